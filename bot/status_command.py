"""`/threadtune status`: what the bot holds, the live model, and 👍/👎 per model."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.blocks import escape
from bot.context import BotContext
from bot.slash import SlashRequest
from curation.status import status_counts


def status(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """Counts of messages, candidates, datasets and models; the live model; 👍/👎 per model."""
    counts = status_counts(ctx.db(), req.team_id)
    cands = ", ".join(f"{escape(k)} {v}" for k, v in counts["candidates"].items() if v) or "none"
    lines = [
        f"*threadtune status* — live model: *{escape(counts['live_model'] or 'base')}*",
        f"• watched channels {counts['watched_channels']}, messages {counts['messages']}, "
        f"threads {counts['threads']}",
        f"• candidates: {cands}",
        f"• datasets {counts['datasets']}, models {counts['models']}",
    ]
    for model, fb in sorted(counts["feedback"].items()):
        lines.append(f"• feedback for model {escape(str(model))}: 👍 {fb['up']}  👎 {fb['down']}")
    if not counts["feedback"]:
        lines.append("• no feedback on answers yet")
    respond("\n".join(lines))


#: /threadtune <name> handlers of this module.
SUBCOMMANDS: dict = {"status": status}


def register(app, ctx: BotContext) -> None:  # noqa: ANN001
    """Only a slash subcommand."""
