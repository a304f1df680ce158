"""The docs are tested: every CLI command and slash command has help text and a README entry, and
every setting is in the README."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from threadtune.cli import app
from threadtune.settings import Settings, env_var

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def cli_commands() -> list[tuple[str, object]]:
    """(full name, click command) for every leaf command, e.g. ('review approve', cmd)."""
    root = typer.main.get_command(app)
    out = []

    def walk(group, prefix: str) -> None:
        for name, cmd in group.commands.items():
            full = f"{prefix} {name}".strip()
            if hasattr(cmd, "commands"):
                out.append((full, cmd))
                walk(cmd, full)
            else:
                out.append((full, cmd))

    walk(root, "")
    return out


def slash_commands() -> list[tuple[str, object]]:
    from bot.app import subcommands

    return sorted(subcommands().items())


def test_every_cli_command_has_help_text():
    missing = [name for name, cmd in cli_commands() if not (cmd.help or cmd.short_help or "").strip()]
    assert not missing, f"commands without help text: {missing}"


def test_every_cli_command_has_a_readme_entry():
    missing = [name for name, _ in cli_commands() if f"threadtune {name}" not in README]
    assert not missing, f"commands missing from README.md: {missing}"


def test_every_slash_command_has_help_text_and_a_readme_entry():
    assert slash_commands(), "no /threadtune subcommands registered"
    no_help = [name for name, handler in slash_commands() if not (handler.__doc__ or "").strip()]
    assert not no_help, f"/threadtune subcommands without a docstring: {no_help}"
    missing = [name for name, _ in slash_commands() if not re.search(rf"/threadtune {re.escape(name)}\b", README)]
    assert not missing, f"/threadtune subcommands missing from README.md: {missing}"


def test_top_level_slash_commands_are_documented():
    for command in ("/ask", "/faq"):
        assert command in README


def test_every_setting_is_in_the_readme():
    missing = [env_var(name) for name in Settings.model_fields if env_var(name) not in README]
    assert not missing, f"settings missing from README.md: {missing}"
