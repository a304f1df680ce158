"""`/threadtune watch`, `unwatch`, `channels` and `backfill`: which channels are collected.

Anyone may list; only admins change the list or backfill. Every change is in the audit log.
"""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import mentions
from bot.backfill import SlackProgress, backfill_channel
from bot.context import BotContext
from bot.roles import has_role, refusal
from bot.slash import SlashRequest
from curation.channels import is_watched, set_watched
from curation.errors import CurationError
from curation.store import audit, connect

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
MAX_DAYS = 3650
def _target(ctx: BotContext, req: SlashRequest, client: WebClient) -> str:
    """The channel named in the arguments (``<#C…|name>`` or plain ``#name``), else this one."""
    for word in req.args:
        if mentions.is_channel_ref(word):
            return mentions.channel_id(ctx.db(), client, req.team_id, word)
    return req.channel_id


def _admin(ctx: BotContext, req: SlashRequest, client: WebClient, respond,  # noqa: ANN001
           action: str) -> bool:
    if has_role(ctx.settings, req.user_id, "admin", client):
        return True
    respond(text=refusal(ctx.settings, "admin", action), response_type="ephemeral")
    return False


def _channel_name(client: WebClient, channel: str) -> tuple[str | None, str | None]:
    """The channel's name, and a hint when the bot is not (and cannot become) a member."""
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except SlackApiError as err:
        return None, (f"I cannot see <#{channel}> ({err.response.get('error')}); invite me with "
                      "`/invite @threadtune`.")
    if info.get("is_member") or info.get("is_im"):
        return info.get("name"), None
    try:
        client.conversations_join(channel=channel)
        return info.get("name"), None
    except SlackApiError:
        return info.get("name"), ("I am not a member yet: invite me with `/invite @threadtune` so "
                                  "that I receive its messages.")


def watch(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """Collect this channel (or #channel): `/threadtune watch [#channel]` (admins)."""
    if not _admin(ctx, req, client, respond, "choose which channels are collected"):
        return
    channel = _target(ctx, req, client)
    if not channel:
        return
    name, hint = _channel_name(client, channel)
    db = ctx.db()
    set_watched(db, req.team_id, channel, True, req.user_id, name=name)
    audit(db, req.team_id, req.user_id, "watch", channel, via="slack")
    respond(f":eyes: Watching <#{channel}>: new messages, edits and deletions are collected from now "
            f"on. `/threadtune backfill {DEFAULT_DAYS}` fetches the last {DEFAULT_DAYS} days."
            + (f"\n{hint}" if hint else ""))


def unwatch(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """Stop collecting this channel (or #channel): `/threadtune unwatch [#channel]` (admins)."""
    if not _admin(ctx, req, client, respond, "choose which channels are collected"):
        return
    channel = _target(ctx, req, client)
    if not channel:
        return
    db = ctx.db()
    set_watched(db, req.team_id, channel, False, req.user_id)
    audit(db, req.team_id, req.user_id, "unwatch", channel, via="slack")
    respond(f"Stopped collecting <#{channel}>. What was collected stays; deletions there are still "
            "honoured.")


def channels(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """List the watched channels and how many messages each holds."""
    rows = watched_channels(ctx.db(), req.team_id)
    if not rows:
        respond("No channel is watched yet. An admin runs `/threadtune watch` in a support channel.")
        return
    lines = [f"• <#{r['id']}> — {r['messages']} messages, {r['threads']} threads" for r in rows]
    respond("*Watched channels*\n" + "\n".join(lines))


def watched_channels(db, team_id: str) -> list[dict]:
    """Watched channels of ``team_id`` with message and thread counts."""
    return [dict(r) for r in db.query(
        "select c.id, c.name, c.watched_by, "
        "(select count(*) from messages m where m.team_id = c.team_id and m.channel_id = c.id "
        " and m.deleted = 0) as messages, "
        "(select count(*) from messages m where m.team_id = c.team_id and m.channel_id = c.id "
        " and m.deleted = 0 and m.thread_ts = m.ts and m.reply_count > 0) as threads "
        "from channels c where c.team_id = ? and c.watched = 1 order by c.name", [team_id])]


def backfill(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """Fetch history of this channel: `/threadtune backfill [days] [#channel]` (admins; default 30)."""
    if not _admin(ctx, req, client, respond, "backfill history"):
        return
    days = DEFAULT_DAYS
    numbers = [a for a in req.args if not mentions.is_channel_ref(a)]
    if numbers:
        try:
            days = int(numbers[0])
            if not 1 <= days <= MAX_DAYS:
                raise ValueError
        except ValueError:
            respond(f":warning: `{numbers[0]}` is not a number of days; try "
                    f"`/threadtune backfill {DEFAULT_DAYS}` (1 to {MAX_DAYS}).")
            return
    channel = _target(ctx, req, client)
    if not channel:
        return
    db = ctx.db()
    if not is_watched(db, req.team_id, channel):
        respond(f"<#{channel}> is not watched. Run `/threadtune watch` there first, then backfill.")
        return
    key = (req.team_id, channel)
    with _running_lock:
        if key in _running:
            respond(f"A backfill of <#{channel}> is already running; its progress is posted in the channel.")
            return
        _running.add(key)
    audit(db, req.team_id, req.user_id, "backfill", channel, detail={"days": days}, via="slack")
    progress = SlackProgress(client, req.channel_id)
    try:
        progress.post(f":hourglass_flowing_sand: Backfilling <#{channel}>, last {days} days…")
    except Exception:
        with _running_lock:
            _running.discard(key)
        raise
    # Backfill waits out rate limits and may take many minutes: it runs on its own thread so
    # that it never holds one of bolt's listener threads.
    threading.Thread(target=_run_backfill, args=(ctx, client, req.team_id, channel, days, progress),
                     name=f"backfill-{channel}", daemon=True).start()


_running: set[tuple[str, str]] = set()
_running_lock = threading.Lock()


def _run_backfill(ctx: BotContext, client: WebClient, team_id: str, channel: str, days: int,
                  progress: SlackProgress) -> None:
    db = connect(ctx.settings.db_path)
    try:
        result = backfill_channel(
            db, client, team_id, channel, days=days,
            answered_reaction=ctx.settings.answered_reaction,
            progress=lambda r: progress.update(
                f":hourglass_flowing_sand: Backfilling <#{channel}>: {r.line()}…"),
        )
        progress.update(f":white_check_mark: Backfilled <#{channel}> ({days} days): {result.line()}.",
                        final=True)
    except CurationError as err:
        progress.update(f":warning: Backfill of <#{channel}> stopped: {err}", final=True)
    except Exception:
        log.exception("backfill of %s failed", channel)
        progress.update(f":warning: Backfill of <#{channel}> failed unexpectedly; the error is in "
                        "the bot's log. What was fetched is kept; run it again to resume.", final=True)
    finally:
        db.close()
        with _running_lock:
            _running.discard((team_id, channel))


#: /threadtune <name> handlers of this module.
SUBCOMMANDS = {"watch": watch, "unwatch": unwatch, "channels": channels, "backfill": backfill}


def register(app, ctx: BotContext) -> None:
    """Channels has only slash subcommands."""
