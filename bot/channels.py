"""`/threadtune watch`, `unwatch`, `channels` and `backfill`: which channels are collected.

Anyone may list; only admins change the list or backfill. Every change is in the audit log.
"""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import mentions
from bot.backfill import backfill_channel
from bot.context import BotContext
from bot.roles import has_role, refusal
from bot.slash import SlashRequest
from curation.channels import is_watched, set_visibility, set_watched, upsert_channel
from curation.errors import CurationError
from curation.status_message import StatusMessage
from curation.store import audit, connect, transaction

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
    if has_role(ctx.settings, req.user_id, "admin", client, team_id=req.team_id):
        return True
    respond(text=refusal(ctx.settings, "admin", action, team_id=req.team_id), response_type="ephemeral")
    return False


def _channel_info(client: WebClient, channel: str) -> tuple[dict, str | None]:
    """The channel's ``conversations.info`` (empty when unreadable), and a hint when the bot is not
    (and cannot become) a member."""
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except SlackApiError as err:
        return {}, (f"I cannot see <#{channel}> ({err.response.get('error')}); invite me with "
                    "`/invite @threadtune`.")
    if info.get("is_member") or info.get("is_im"):
        return info, None
    try:
        client.conversations_join(channel=channel)
        return info, None
    except SlackApiError:
        return info, ("I am not a member yet: invite me with `/invite @threadtune` so "
                      "that I receive its messages.")


def _watched_target(ctx: BotContext, req: SlashRequest, client: WebClient,
                    respond) -> str | None:  # noqa: ANN001
    """The channel that `watch` or `unwatch` is about, or None when the user is no admin (told so)."""
    if not _admin(ctx, req, client, respond, "choose which channels are collected"):
        return None
    return _target(ctx, req, client)


def watch(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """Collect this channel (or #channel): `/threadtune watch [#channel]` (admins)."""
    channel = _watched_target(ctx, req, client, respond)
    if not channel:
        return
    info, hint = _channel_info(client, channel)
    db = ctx.db()
    private = (bool(info.get("is_private") or info.get("is_group") or info.get("is_im")
                    or info.get("is_mpim")) if info else None)  # its real privacy, when Slack says
    set_watched(db, req.team_id, channel, True, req.user_id, name=info.get("name"), is_private=private,
                is_im=bool(info.get("is_im") or info.get("is_mpim")) if info else None)
    audit(db, req.team_id, req.user_id, "watch", channel, via="slack")
    respond(f":eyes: Watching <#{channel}>: new messages, edits and deletions are collected from now "
            f"on. `/threadtune backfill {DEFAULT_DAYS}` fetches the last {DEFAULT_DAYS} days."
            + (f"\n{hint}" if hint else ""))


def unwatch(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """Stop collecting this channel (or #channel): `/threadtune unwatch [#channel]` (admins)."""
    channel = _watched_target(ctx, req, client, respond)
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
    progress = StatusMessage(client, req.channel_id, team_id=req.team_id, budget=ctx.updates())
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
                  progress: StatusMessage) -> None:
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


_SWITCHES = {"shared": ("shared", True), "unshared": ("shared", False),
             "trainable": ("trainable", True), "untrainable": ("trainable", False)}


def visibility(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """Who may see pairs from this channel: `/threadtune visibility [#channel] [shared|unshared]
    [trainable|untrainable]` (changes: admins)."""
    words = [w.lower() for w in req.args if not mentions.is_channel_ref(w)]
    unknown = [w for w in words if w not in _SWITCHES]
    if unknown:
        respond(f":warning: `{unknown[0][:40]}` is not one of shared, unshared, trainable, untrainable.")
        return
    channel = _target(ctx, req, client)
    db = ctx.db()
    flags = dict(_SWITCHES[w] for w in words)
    if flags:
        if not _admin(ctx, req, client, respond, "change who may see a channel's pairs"):
            return
        set_visibility(db, req.team_id, channel, **flags)
        audit(db, req.team_id, req.user_id, "visibility", channel, detail=flags, via="slack")
    row = db.execute("select is_private, is_im, shared, trainable from channels where team_id = ? "
                     "and id = ?", [req.team_id, channel]).fetchone()
    if row is None:
        respond(f"<#{channel}> is not known yet; `/threadtune watch` it first.")
        return
    respond(visibility_text(channel, *row))


def visibility_text(channel: str, private: int, im: int, shared: int, trainable: int) -> str:
    """What ``/threadtune visibility`` says about a channel."""
    if not (private or im):
        return (f"<#{channel}> is public: its pairs may answer anywhere in the workspace and go into "
                "datasets.")
    where = ("anywhere (an admin shared it)" if shared else f"only in <#{channel}>")
    train = ("go into datasets (an admin marked it trainable: a trained model may repeat them "
             "anywhere)" if trainable else "stay out of datasets")
    return f"<#{channel}> is private: its pairs answer {where} and {train}."


#: /threadtune <name> handlers of this module.
SUBCOMMANDS = {"watch": watch, "unwatch": unwatch, "channels": channels, "backfill": backfill,
               "visibility": visibility}

#: Events that tell a channel's name and privacy: (is_private, where the channel id is).
CHANNEL_EVENTS = {"channel_created": False, "channel_rename": False, "channel_unarchive": False,
                  "group_rename": True, "group_open": True, "group_unarchive": True}


def register(app, ctx: BotContext) -> None:
    """Keep channel names and privacy current from ``channel_*`` and ``group_*`` events."""
    for kind, private in CHANNEL_EVENTS.items():
        app.event(kind)(_channel_event(ctx, private))


def _channel_event(ctx: BotContext, private: bool):  # noqa: ANN202
    def on_channel_event(body, event, ack):  # noqa: ANN001
        ack()
        channel = event.get("channel")
        channel_id = channel.get("id") if isinstance(channel, dict) else channel
        name = channel.get("name") if isinstance(channel, dict) else None
        team_id = body.get("team_id")
        if not isinstance(channel_id, str) or not channel_id or not isinstance(team_id, str):
            return
        db = ctx.db()
        with transaction(db):
            known = db.execute("select 1 from channels where team_id = ? and id = ?",
                               [team_id, channel_id]).fetchone()
            if known or not private:
                upsert_channel(db, team_id, channel_id, name if isinstance(name, str) else None,
                               is_private=private, is_im=False)
    return on_channel_event
