"""The import rules between parts, and the bot's start-up cost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_importing_bot_and_curation_loads_neither_torch_nor_transformers():
    out = _run("""
        import pkgutil, importlib, sys
        import bot, curation
        for pkg in (bot, curation):
            for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                importlib.import_module(m.name)
        print(sorted(m for m in ("torch", "transformers", "trl", "peft") if m in sys.modules))
    """)
    assert out == "[]"


def test_building_the_bot_app_is_fast_and_light(tmp_path):
    """A fresh process imports the bot and builds the app with under two seconds of work, without
    torch. The work is the process's CPU time, best of three: on the shared 2-core machine other
    jobs stretch the wall clock (3.5 s of wall for 1.3 s of CPU at load 8), and an idle machine's
    wall time is that CPU time plus a little I/O."""
    code = f"""
        import time, sys
        t = time.process_time()
        from threadtune.settings import Settings
        from bot.app import build_app
        build_app(Settings(_env_file=None, data_dir="{tmp_path}", slack_bot_token="xoxb-1", slack_signing_secret="s"))
        print(round(time.process_time() - t, 3), "torch" in sys.modules)
    """
    runs = [_run(code).split() for _ in range(3)]
    assert all(torch_loaded == "False" for _, torch_loaded in runs)
    assert min(float(seconds) for seconds, _ in runs) < 2.0


def test_the_bot_never_loads_what_starts_a_model_server(tmp_path):
    """The bot queues curation for the worker and reaches models over HTTP only: importing every bot
    module and building the app loads none of the modules that spawn a model server."""
    out = _run(f"""
        import importlib, pkgutil, sys
        import bot
        for m in pkgutil.walk_packages(bot.__path__, "bot."):
            importlib.import_module(m.name)
        from threadtune.settings import Settings
        from bot.app import build_app
        build_app(Settings(_env_file=None, data_dir="{tmp_path}", slack_bot_token="xoxb-1", slack_signing_secret="s"))
        print(sorted(m for m in ("serving.embedded", "serving.vllm", "serving.backend", "curation.curate")
                     if m in sys.modules))
    """)
    assert out == "[]"


def _modules(path: Path) -> set[str]:
    """Every module ``path`` imports, by its full dotted name (``from a import b`` counts as ``a.b``
    too, since ``b`` may be a module)."""
    import ast

    names: set[str] = set()
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # `if TYPE_CHECKING:` imports are annotations, not arrows
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _imports(path: Path) -> set[str]:
    """The top-level packages ``path`` imports."""
    return {name.split(".")[0] for name in _modules(path)}


#: The one module of the app shell that parts may import: the typed Settings, read once at the
#: entrypoint and passed to the bot as one object. It is a leaf (pydantic only), so importing it
#: brings no wiring along; everything else in threadtune/ (the CLI, the demo) imports the parts.
SETTINGS = "threadtune.settings"


def _shell_imports(path: Path) -> set[str]:
    """What ``path`` imports from the app shell, the Settings module aside."""
    return {m for m in _modules(path) if m.split(".")[0] == "threadtune"
            and m != "threadtune" and m != SETTINGS and not m.startswith(SETTINGS + ".")}


def test_arrows_run_one_way():
    forbidden = {
        "curation": {"slack_bolt", "slack_sdk", "bot", "training", "threadtune"},
        "serving": {"bot", "curation", "training", "threadtune", "slack_bolt", "slack_sdk"},
        "bot": {"training"},
        "training": {"bot", "slack_bolt", "threadtune"},
    }
    problems = []
    for part, banned in forbidden.items():
        for path in (ROOT / part).rglob("*.py"):
            bad = _imports(path) & banned
            if bad:
                problems.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not problems, problems


def test_the_bot_imports_nothing_of_the_app_shell_but_its_settings():
    problems = [f"{path.relative_to(ROOT)} imports {sorted(bad)}" for path in (ROOT / "bot").rglob("*.py")
                if (bad := _shell_imports(path))]
    assert not problems, problems


def test_the_rule_catches_a_bot_module_that_imports_the_cli(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from threadtune.settings import Settings\nfrom threadtune import cli\n"
                      "import threadtune.demo\n")
    assert _shell_imports(sneaky) == {"threadtune.cli", "threadtune.demo"}


def test_settings_is_a_leaf_that_loads_no_part():
    assert not _modules(ROOT / "threadtune" / "settings.py") & {"bot", "curation", "training", "serving"}
    assert not {m.split(".")[0] for m in _modules(ROOT / "threadtune" / "settings.py")} & {
        "bot", "curation", "training", "serving", "threadtune"}
    out = _run("""
        import sys
        import threadtune.settings
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("bot", "curation", "training", "serving")
                     or m.startswith("threadtune.") and m != "threadtune.settings"))
    """)
    assert out == "[]"


def test_only_training_and_serving_import_torch_or_transformers():
    problems = []
    for part in ("bot", "curation", "threadtune"):
        for path in (ROOT / part).rglob("*.py"):
            bad = _imports(path) & {"torch", "transformers", "trl", "peft"}
            if bad:
                problems.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not problems, problems
