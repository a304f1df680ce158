"""`threadtune demo`: the whole loop offline on the embedded model."""

from __future__ import annotations

from pathlib import Path

import typer

from threadtune.shell import console, fail, settings, user_errors


def register(app: typer.Typer) -> None:
    """Add `demo` to ``app``."""

    @app.command()
    @user_errors
    def demo(
        fast: bool = typer.Option(False, "--fast", help="Trim the steps (fewer sources, steps and tokens) for CI."),
        workdir: Path = typer.Option(Path("threadtune-demo"), "--workdir",
                                     help="Fresh folder for the demo's data (an earlier demo's is wiped)."),
        llm: bool = typer.Option(True, "--llm/--no-llm",
                                 help="Curate with LLM rewrites (default) or deterministic pairs only."),
    ) -> None:
        """Run the whole loop offline: import, curate, review, dataset, train, eval, serve, ask."""
        import os

        from serving.models import QUIET_ENV
        from threadtune.demo import DemoError, DemoOptions, run_demo

        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecations, not ours
        for key, value in QUIET_ENV.items():  # the demo's rich bars replace the libraries' tqdm bars
            os.environ.setdefault(key, value)

        try:
            run_demo(settings(), DemoOptions(workdir=workdir.resolve(), fast=fast, use_llm=llm), console)
        except DemoError as err:
            fail(str(err))
