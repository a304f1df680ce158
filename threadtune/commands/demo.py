"""`threadtune demo`: the whole loop offline on the embedded model."""

from __future__ import annotations

import typer

from threadtune.shell import console


def register(app: typer.Typer) -> None:
    """Add `demo` to ``app``."""

    @app.command()
    def demo(
        fast: bool = typer.Option(False, "--fast", help="Trim the steps (CI)."),
    ) -> None:
        """Run the whole loop offline: import, curate, review, dataset, train, eval, serve, ask."""
        console.print("demo not built yet")
