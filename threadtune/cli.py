"""The `threadtune` command line. It wires the parts together and holds no logic of its own.

Each command module in threadtune/commands/ adds its commands to ``app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from threadtune import __version__
from threadtune.commands import collect, core, curate, demo, privacy, serve, train
from threadtune.shell import set_settings, settings, user_errors

app = typer.Typer(
    name="threadtune",
    help="Turn your team's Slack support chat into a tuned assistant that answers in the channel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"threadtune {__version__}")
        raise typer.Exit()


@app.callback()
@user_errors
def _root(
    data_dir: Optional[Path] = typer.Option(
        None, "--data-dir", help="Data folder (overrides THREADTUNE_DATA_DIR).", show_default=False
    ),
    team: Optional[str] = typer.Option(
        None, "--team", help="Slack team id to act on (overrides THREADTUNE_TEAM_ID).", show_default=False
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Turn your team's Slack support chat into a tuned assistant."""
    if data_dir is not None or team is not None:
        overrides = {}
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        if team is not None:
            overrides["team_id"] = team
        set_settings(settings().model_copy(update=overrides))


for module in (core, collect, curate, train, serve, privacy, demo):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
