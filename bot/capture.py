"""Bot listeners for capture (filled in by its issue)."""

from __future__ import annotations

from bot.context import BotContext

#: /threadtune <name> handlers of this module.
SUBCOMMANDS: dict = {}


def register(app, ctx: BotContext) -> None:
    """Add this module's listeners to ``app``."""
