"""Live capture: message events (new, edited, deleted) and reactions, into the store.

Capture runs as a global bolt middleware, not a listener, for two reasons:
- it writes *before* the ack: if the bot dies before the write, Slack retries, and the retry
  (same ``event_id``) is written once; after the ack nothing can be lost;
- bolt runs only the first listener that matches a request, and a ``message`` listener here
  would hide ``message`` events from the answer listeners. The middleware calls ``next()``.

Rules: only watched channels (and DMs only with ``THREADTUNE_KEEP_DMS``); never the bot's own
messages or other bots'; edits and deletions apply to whatever is stored, watched or not.
"""

from __future__ import annotations

import itertools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.context import BotContext
from bot.privacy import erase_residue_soon
from bot.review import show_stale
from bot.users import UserResolver
from curation.channels import is_watched, note_channel_type, upsert_channel
from curation.deletion import apply_delete
from curation.event_ids import first_delivery, prune_events_seen  # first_delivery: re-exported
from curation.messages import apply_edit, apply_reaction, link_reply, upsert_message
from curation.rows import skip_reason
from curation.store import transaction

log = logging.getLogger(__name__)

__all__ = ["SUBCOMMANDS", "first_delivery", "handle_event", "register"]

#: /threadtune <name> handlers of this module.
SUBCOMMANDS: dict = {}

#: Event types capture writes from.
CAPTURED = frozenset({"message", "reaction_added", "reaction_removed"})
_DM_TYPES = frozenset({"im", "mpim"})
# SQLite admits one writer at a time, and a connection that finds the lock taken polls with
# growing sleeps (up to 100 ms each): the p99 ack suffers. Capture threads queue here instead.
_WRITE_LOCK = threading.Lock()
_handled = itertools.count(1)
PRUNE_EVERY = 1000  # events between prunings of old event ids


def register(app, ctx: BotContext) -> None:
    """Add the capture middleware to ``app``."""
    users = UserResolver(ctx)
    parents = ParentFetcher(ctx)

    @app.middleware
    def capture_events(body: dict, context, next):  # noqa: ANN001, A002 (bolt injects by name)
        if body.get("type") == "event_callback" and (body.get("event") or {}).get("type") in CAPTURED:
            try:
                user_id = handle_event(ctx, body, bot_user_id=context.bot_user_id, bot_id=context.bot_id)
            except (AttributeError, TypeError, KeyError, ValueError) as err:
                # A payload with fields of the wrong shape: store nothing (the transaction rolled
                # back), log it, and ack, so that Slack does not retry it forever.
                log.warning("malformed %s event %s ignored: %s", (body.get("event") or {}).get("type"),
                            body.get("event_id"), err)
                user_id = None
                _deleted.ids = []  # rolled back with the transaction
            if user_id and context.client is not None:
                users.ensure(context.client, body.get("team_id") or "", user_id)
                parents.ensure(context.client, body, bot_id=context.bot_id)
            stale, _deleted.ids = _deleted.ids, []
            if _deleted.erased:  # the text leaves the index segments and the WAL too
                _deleted.erased = False
                erase_residue_soon(ctx, _WRITE_LOCK)
            if stale and context.client is not None:  # tell reviewers, off the request path
                _notices.submit(show_stale, ctx, context.client, body.get("team_id") or "", stale)
        next()


class ParentFetcher:
    """A reply whose thread began before the channel was watched: fetch the thread's first
    message (``conversations.replies``, off the request path), so the stored thread is whole."""

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadtune-parents")
        self._pending: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def ensure(self, client: WebClient, body: dict[str, Any], *, bot_id: str | None = None) -> None:
        """Queue a fetch when ``body`` stored a reply whose parent is not stored."""
        team_id, event = body.get("team_id"), body.get("event") or {}
        channel, ts, parent = event.get("channel"), event.get("ts"), event.get("thread_ts")
        if event.get("subtype") in ("message_changed", "message_deleted") or not (
                isinstance(parent, str) and isinstance(channel, str) and parent != ts):
            return
        db = self.ctx.db()
        if _stored(db, team_id, channel, parent) or not _stored(db, team_id, channel, str(ts)):
            return
        key = (team_id, channel, parent)
        with self._lock:
            if key in self._pending:
                return
            self._pending.add(key)
        self._pool.submit(self._fetch, client, key, bot_id)

    def _fetch(self, client: WebClient, key: tuple[str, str, str], bot_id: str | None = None) -> None:
        team_id, channel, parent = key
        try:
            page = client.conversations_replies(channel=channel, ts=parent, limit=1)
            first = (page.get("messages") or [None])[0]
            # An app's root posted for a person (a poll) is kept (rows.app_thread_root); ours is not.
            if isinstance(first, dict) and str(first.get("ts")) == parent and not (
                    skip_reason(first) or (bot_id and first.get("bot_id") == bot_id)):
                db = self.ctx.db()
                with _WRITE_LOCK, transaction(db):
                    upsert_message(db, team_id, channel, first, "event",
                                   answered_reaction=self.ctx.settings.answered_reaction)
                    link_reply(db, team_id, channel, parent)
        except SlackApiError as err:  # the reply is stored; a missing parent is a gap, not a failure
            log.info("parent %s in %s not fetched: %s", parent, channel, err.response.get("error"))
        except Exception:
            log.exception("fetching the parent of thread %s in %s failed", parent, channel)
        finally:
            with self._lock:
                self._pending.discard(key)


def ignore_event(ack) -> None:  # noqa: ANN001
    """Acknowledge an event nothing else wants, so that Slack does not retry it (bolt would
    answer 404). Registered last, in ``bot.app.build_app``."""
    ack()


def _is_bot(msg: dict[str, Any], bot_user_id: str | None, bot_id: str | None) -> bool:
    return bool(msg.get("bot_id") or msg.get("subtype") == "bot_message"
                or (bot_user_id and msg.get("user") == bot_user_id)
                or (bot_id and msg.get("bot_id") == bot_id))


def handle_event(ctx: BotContext, body: dict[str, Any], *, bot_user_id: str | None = None,
                 bot_id: str | None = None) -> str | None:
    """Apply one Events API body to the store, once per ``event_id``.

    Returns the id of a user whose name is worth resolving (the author of a stored message).
    """
    team_id = body.get("team_id")
    event = body.get("event")
    if not team_id or not isinstance(team_id, str) or not isinstance(event, dict):
        return None
    db = ctx.db()
    settings = ctx.settings
    if next(_handled) % PRUNE_EVERY == 0:
        prune_events_seen(db)
    with _WRITE_LOCK, transaction(db):
        event_id = body.get("event_id")
        if not first_delivery(db, str(event_id) if event_id else None, team_id, scope="capture"):
            return None
        kind = event.get("type")
        if kind in ("reaction_added", "reaction_removed"):
            item = event.get("item")
            if (isinstance(item, dict) and item.get("type") == "message"
                    and isinstance(item.get("channel"), str) and item.get("ts")):
                apply_reaction(db, team_id, item["channel"], str(item["ts"]),
                               str(event.get("reaction") or ""), str(event.get("user") or ""),
                               added=kind == "reaction_added",
                               answered_reaction=settings.answered_reaction)
            return None
        channel = event.get("channel")
        if not channel or not isinstance(channel, str):
            return None
        note_channel_type(db, team_id, channel, event.get("channel_type"))  # privacy stays current
        subtype = event.get("subtype")
        if subtype == "message_deleted":
            previous = event.get("previous_message")
            deleted = event.get("deleted_ts") or (previous.get("ts") if isinstance(previous, dict) else None)
            _delete(db, team_id, channel, deleted if isinstance(deleted, (str, int, float)) else None)
            return None
        if subtype == "message_changed":
            return _change(ctx, db, team_id, channel, event, bot_user_id, bot_id)
        if _is_bot(event, bot_user_id, bot_id) or skip_reason(event):
            return None
        if not _collects(ctx, db, team_id, channel, event.get("channel_type")):
            return None
        upsert_message(db, team_id, channel, event, "event",
                       answered_reaction=settings.answered_reaction)
        return _user(event)


def _user(msg: dict[str, Any]) -> str | None:
    user = msg.get("user")
    return user if isinstance(user, str) else None


def _collects(ctx: BotContext, db, team_id: str, channel: str, channel_type: str | None) -> bool:
    if (isinstance(channel_type, str) and channel_type in _DM_TYPES) or channel.startswith("D"):
        if not ctx.settings.keep_dms:
            return False
        upsert_channel(db, team_id, channel, None, is_private=True, is_im=True)
        return True
    return is_watched(db, team_id, channel)


def _stored(db, team_id: str, channel: str, ts: str) -> bool:
    return db.execute("select 1 from messages where team_id = ? and channel_id = ? and ts = ?",
                      [team_id, channel, ts]).fetchone() is not None


class _Deleted(threading.local):
    """Candidate ids a delete marked stale in this thread's current event, and whether it removed
    text (a deletion or an edit) whose residue must be erased (see the middleware)."""

    ids: list[int] = []
    erased: bool = False


_deleted = _Deleted()
_notices = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadtune-stale")


def _delete(db, team_id: str, channel: str, ts: str | None) -> None:
    if not ts:
        return
    known = db.execute("select 1 from channels where team_id = ? and id = ?",
                       [team_id, channel]).fetchone() is not None
    _deleted.ids = _deleted.ids + apply_delete(db, team_id, channel, str(ts), tombstone=known)
    _deleted.erased = True


def _change(ctx: BotContext, db, team_id: str, channel: str, event: dict[str, Any],
            bot_user_id: str | None, bot_id: str | None) -> str | None:
    msg = event.get("message")
    if not isinstance(msg, dict) or skip_reason(msg) == "no ts":
        return None
    ts = str(msg["ts"])
    if msg.get("subtype") == "tombstone":  # a parent deleted after it got replies
        _delete(db, team_id, channel, ts)
        return None
    if _is_bot(msg, bot_user_id, bot_id):
        return None
    edited = msg["edited"].get("ts") if isinstance(msg.get("edited"), dict) else None
    text = msg.get("text")
    if _stored(db, team_id, channel, ts):
        if apply_edit(db, team_id, channel, ts, text if isinstance(text, str) else "",
                      str(edited) if edited else None):
            # What the author edited away leaves the index segments and the WAL too, as a deletion
            # does (a password pasted by mistake and edited out is gone from disk).
            _deleted.erased = True
        return None
    # Edited before we saw it (say, in a channel watched since): store the current version.
    if skip_reason(msg) or not _collects(ctx, db, team_id, channel, event.get("channel_type")):
        return None
    upsert_message(db, team_id, channel, msg, "event",
                   answered_reaction=ctx.settings.answered_reaction)
    return _user(msg)
