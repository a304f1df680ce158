"""`/threadtune <sub> [args]`: one slash command, routed to handlers that each bot module declares.

A handler is ``handler(ctx, req, client, respond) -> None``. The router acks at once (Slack wants an
answer within 3 s), then runs the handler; handlers answer with ``respond`` (ephemeral by default) or
post messages with ``client``.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient

from bot.context import BotContext
from curation.errors import CurationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlashRequest:
    """A parsed slash command."""

    team_id: str
    user_id: str
    channel_id: str
    command: str
    sub: str
    args: list[str]
    text: str
    trigger_id: str | None
    response_url: str | None


Handler = Callable[[BotContext, SlashRequest, WebClient, Callable[..., object]], None]


def parse(body: dict) -> SlashRequest:
    """Parse a slash-command body; quotes group words (``/threadtune eval "v 2"``)."""
    text = (body.get("text") or "").strip()
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes: fall back to plain splitting
        words = text.split()
    sub = words[0].lower() if words else "help"
    return SlashRequest(
        team_id=body.get("team_id") or "",
        user_id=body.get("user_id") or "",
        channel_id=body.get("channel_id") or "",
        command=body.get("command") or "/threadtune",
        sub=sub,
        args=words[1:],
        text=text,
        trigger_id=body.get("trigger_id"),
        response_url=body.get("response_url"),
    )


def help_text(handlers: dict[str, Handler]) -> str:
    """One line per subcommand, from the handlers' docstrings."""
    lines = ["*threadtune* — `/threadtune <command>`:"]
    for name in sorted(handlers):
        doc = (handlers[name].__doc__ or "").strip().splitlines()
        lines.append(f"• `{name}` — {doc[0] if doc else ''}")
    return "\n".join(lines)


def register(app, ctx: BotContext, handlers: dict[str, Handler]) -> None:
    """Add the ``/threadtune`` command to ``app``, dispatching to ``handlers``."""

    @app.command("/threadtune")
    def threadtune_command(ack, body, client, respond):  # noqa: ANN001 (bolt injects by name)
        ack()
        req = parse(body)
        handler = handlers.get(req.sub)
        if handler is None:
            prefix = "" if req.sub == "help" else f"Unknown command `{req.sub}`.\n"
            respond(prefix + help_text(handlers))
            return
        try:
            handler(ctx, req, client, respond)
        except CurationError as err:
            respond(f":warning: {err}")
        except Exception:  # never silence: tell the user and log the traceback
            log.exception("slash command %s failed", req.sub)
            respond(f":warning: `/threadtune {req.sub}` failed unexpectedly; the error is in the bot's log.")
