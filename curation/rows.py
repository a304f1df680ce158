"""Slack objects to store rows, pure: messages, users, and which messages are conversation.

Fields of the wrong type are dropped, never fatal: exports in the wild are untidy.
"""

from __future__ import annotations

import re
from typing import Any

from curation.store import dumps, now

#: Subtypes that are channel housekeeping, not conversation.
SYSTEM_SUBTYPES = frozenset({
    "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
    "channel_archive", "channel_unarchive", "channel_convert_to_private",
    "channel_convert_to_public", "group_join", "group_leave", "group_topic", "group_purpose",
    "group_name", "group_archive", "group_unarchive", "pinned_item", "unpinned_item", "bot_add",
    "bot_remove", "bot_enable", "bot_disable", "reminder_add", "ekm_access_denied",
    "joiner_notification", "joiner_notification_for_inviter", "sh_room_created", "huddle_thread",
    "channel_posting_permissions", "message_replied", "assistant_app_thread",
})

#: The ``messages`` columns, in the order of the tuples :func:`message_row` returns.
MESSAGE_COLUMNS = ("team_id", "channel_id", "ts", "thread_ts", "user_id", "text", "subtype",
                   "bot_id", "reply_count", "answered", "reactions", "edited_ts", "deleted",
                   "source", "created_at", "updated_at")


#: A Slack timestamp: seconds, a dot, a sequence number (``1700000000.000100``).
_TS = re.compile(r"^[0-9]{1,12}(?:\.[0-9]{1,9})?$")
#: The same rule in SQL, for rows stored before ts was checked.
VALID_TS_SQL = "(ts not glob '*[^0-9.]*' and ts glob '[0-9]*' and ts not glob '*.*.*')"


def valid_ts(value: Any) -> bool:
    """Whether ``value`` is a Slack timestamp (a string or number like ``1700000000.000100``)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return False
    return bool(_TS.match(str(value)))


def skip_reason(msg: dict[str, Any]) -> str | None:
    """Why a Slack message object is not stored as conversation, or None to store it."""
    if not isinstance(msg, dict) or not isinstance(msg.get("ts"), (str, int, float)) or not msg["ts"]:
        return "no ts"
    if not valid_ts(msg["ts"]):
        return "ts is not a Slack timestamp"
    thread_ts = msg.get("thread_ts")
    if thread_ts not in (None, "") and not valid_ts(thread_ts):
        return "thread_ts is not a Slack timestamp"
    subtype = msg.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        return "malformed message"
    if subtype in SYSTEM_SUBTYPES:
        return f"system message ({subtype})"
    if (subtype == "bot_message" or msg.get("bot_id")) and not app_thread_root(msg):
        return "bot message"
    if subtype != "tombstone" and not msg.get("user"):
        return "no user"
    return None


def app_thread_root(msg: dict[str, Any]) -> bool:
    """A thread's first message that an app posted for a person (a poll, a form) and people
    replied to: it is the thread's question, so it is kept like a person's message."""
    ts, thread_ts = str(msg.get("ts")), msg.get("thread_ts")
    return bool(msg.get("user") and msg.get("reply_count") and (thread_ts is None or str(thread_ts) == ts))


def answered_flag(reactions: list[dict] | None, answered_reaction: str) -> int:
    """1 when someone reacted with ``answered_reaction``, else 0."""
    return int(any(r.get("name") == answered_reaction and (r.get("count") or len(r.get("users") or []))
                   for r in reactions or []))


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def scalar_text(value: Any) -> str | None:
    """A scalar field (string or number) as clean text, or None for anything else or empty."""
    return clean_text(str(value)) if isinstance(value, (str, int, float)) and value != "" else None


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` as valid UTF-8: a lone surrogate (possible in JSON, impossible in SQLite's UTF-8)
    becomes ``?``; everything else, right-to-left marks and zero-width joiners included, stays."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _reactions(value: Any) -> list[dict] | None:
    if not isinstance(value, list):
        return None
    return [{"name": str(r.get("name")),
             "users": [u for u in r.get("users") or [] if isinstance(u, str)]
             if isinstance(r.get("users"), list) else [],
             "count": _int(r.get("count")) or len(r.get("users") or [])}
            for r in value if isinstance(r, dict) and r.get("name")]


def message_row(team_id: str, channel_id: str, msg: dict[str, Any], source: str, *,
                answered_reaction: str = "white_check_mark", at: str | None = None) -> tuple:
    """The ``messages`` row (a tuple in ``MESSAGE_COLUMNS`` order) for a Slack message object.
    Fields of the wrong type are dropped, never fatal: exports in the wild are untidy."""
    # Written for speed (an import calls it once per message): plain strings take the short path.
    get = msg.get
    reactions = _reactions(get("reactions")) if "reactions" in msg else None
    edited = get("edited")
    text, thread_ts, user = get("text"), get("thread_ts"), get("user")
    subtype, bot_id, replies = get("subtype"), get("bot_id"), get("reply_count")
    stamp = at or now()
    return (
        team_id, channel_id, str(msg["ts"]),
        thread_ts if thread_ts.__class__ is str and thread_ts else scalar_text(thread_ts),
        user if user.__class__ is str and user else scalar_text(user),
        clean_text(text) if text.__class__ is str else "",
        subtype if subtype is None or subtype.__class__ is str else scalar_text(subtype),
        bot_id if bot_id is None or bot_id.__class__ is str else scalar_text(bot_id),
        replies if replies.__class__ is int else _int(replies),
        answered_flag(reactions, answered_reaction) if reactions else 0,
        dumps(reactions) if reactions is not None else None,
        scalar_text(edited.get("ts")) if edited.__class__ is dict else None,
        0, source, stamp, stamp,
    )


def user_row(team_id: str, user: dict[str, Any], at: str | None = None) -> dict[str, Any]:
    """The ``users`` row for a Slack user object (``users.info``, ``users.list`` or users.json)."""
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    return {
        "team_id": team_id,
        "id": str(user["id"]),
        "name": scalar_text(user.get("name")) or "",
        "real_name": scalar_text(user.get("real_name")) or scalar_text(profile.get("real_name")) or "",
        "display_name": scalar_text(profile.get("display_name")) or "",
        "is_bot": int(bool(user.get("is_bot"))),
        "deleted": int(bool(user.get("deleted"))),
        "updated_at": at or now(),
    }
