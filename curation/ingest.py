"""Writing Slack data into the store: channels, users, messages, edits, deletions and reactions.

Every path that brings Slack data in (live events, Web API backfill, export import) goes through
these functions, so the rules hold everywhere:

- a message is keyed by ``(team_id, channel_id, ts)``: a redelivery or a rerun updates, never
  duplicates;
- a deleted message stays deleted: its text is blanked, later imports or backfills never bring it
  back, and candidates derived from it are marked stale;
- an older copy of a message (an export taken before an edit) never overwrites a newer edit;
- thread convention: replies carry ``thread_ts``; a parent with replies has ``thread_ts == ts``;
  a top-level message without replies has ``thread_ts`` NULL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlite_utils import Database

from curation.store import dumps, loads, now, transaction

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

_COLUMNS = ("team_id", "channel_id", "ts", "thread_ts", "user_id", "text", "subtype", "bot_id",
            "reply_count", "answered", "reactions", "edited_ts", "deleted", "source",
            "created_at", "updated_at")

_INSERT = (f"INSERT INTO messages ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
           " ON CONFLICT (team_id, channel_id, ts) DO NOTHING")
# The merge rule for a message already stored. The WHERE keeps deleted messages deleted, and
# skips rows that did not change, so that a rerun writes nothing (and the FTS triggers do no work).
_UPSERT = f"""
INSERT INTO messages ({", ".join(_COLUMNS)}) VALUES ({", ".join("?" for _ in _COLUMNS)})
ON CONFLICT (team_id, channel_id, ts) DO UPDATE SET
  thread_ts = coalesce(excluded.thread_ts, messages.thread_ts),
  user_id = coalesce(excluded.user_id, messages.user_id),
  text = CASE WHEN coalesce(excluded.edited_ts, '') >= coalesce(messages.edited_ts, '')
              THEN excluded.text ELSE messages.text END,
  edited_ts = CASE WHEN coalesce(excluded.edited_ts, '') >= coalesce(messages.edited_ts, '')
                   THEN excluded.edited_ts ELSE messages.edited_ts END,
  subtype = excluded.subtype,
  reply_count = max(coalesce(excluded.reply_count, 0), coalesce(messages.reply_count, 0)),
  reactions = coalesce(excluded.reactions, messages.reactions),
  answered = CASE WHEN excluded.reactions IS NULL THEN messages.answered ELSE excluded.answered END,
  updated_at = excluded.updated_at
WHERE messages.deleted = 0 AND (
  messages.text IS NOT excluded.text OR messages.thread_ts IS NOT coalesce(excluded.thread_ts, messages.thread_ts)
  OR messages.edited_ts IS NOT excluded.edited_ts OR messages.reply_count < excluded.reply_count
  OR (excluded.reactions IS NOT NULL AND messages.reactions IS NOT excluded.reactions)
  OR messages.subtype IS NOT excluded.subtype)
"""


def _tx(db: Database) -> AbstractContextManager:
    """A write transaction, or nothing when the caller holds one already: its rollback covers
    ours, and the savepoint a nested transaction would open costs a live event two statements."""
    return nullcontext() if db.conn.in_transaction else transaction(db)


# --- pure: Slack objects to rows ----------------------------------------------------------------

def skip_reason(msg: dict[str, Any]) -> str | None:
    """Why a Slack message object is not stored as conversation, or None to store it."""
    if not isinstance(msg, dict) or not isinstance(msg.get("ts"), (str, int, float)) or not msg["ts"]:
        return "no ts"
    subtype = msg.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        return "malformed message"
    if subtype in SYSTEM_SUBTYPES:
        return f"system message ({subtype})"
    if subtype == "bot_message" or msg.get("bot_id"):
        return "bot message"
    if subtype != "tombstone" and not msg.get("user"):
        return "no user"
    return None


def _answered(reactions: list[dict] | None, answered_reaction: str) -> int:
    return int(any(r.get("name") == answered_reaction and (r.get("count") or len(r.get("users") or []))
                   for r in reactions or []))


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _str(value: Any) -> str | None:
    return clean_text(str(value)) if isinstance(value, (str, int, float)) and value != "" else None


def _clean(text: str) -> str:
    """Text SQLite can store: lone surrogates (invalid UTF-8) become U+FFFD; all else is kept."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


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
    """The ``messages`` row (a tuple in ``_COLUMNS`` order) for a Slack message object.
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
        thread_ts if thread_ts.__class__ is str and thread_ts else _str(thread_ts),
        user if user.__class__ is str and user else _str(user),
        clean_text(text) if text.__class__ is str else "",
        subtype if subtype is None or subtype.__class__ is str else _str(subtype),
        bot_id if bot_id is None or bot_id.__class__ is str else _str(bot_id),
        replies if replies.__class__ is int else _int(replies),
        _answered(reactions, answered_reaction) if reactions else 0,
        dumps(reactions) if reactions is not None else None,
        _str(edited.get("ts")) if edited.__class__ is dict else None,
        0, source, stamp, stamp,
    )


def user_row(team_id: str, user: dict[str, Any], at: str | None = None) -> dict[str, Any]:
    """The ``users`` row for a Slack user object (``users.info``, ``users.list`` or users.json)."""
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    return {
        "team_id": team_id,
        "id": str(user["id"]),
        "name": _str(user.get("name")) or "",
        "real_name": _str(user.get("real_name")) or _str(profile.get("real_name")) or "",
        "display_name": _str(profile.get("display_name")) or "",
        "is_bot": int(bool(user.get("is_bot"))),
        "deleted": int(bool(user.get("deleted"))),
        "updated_at": at or now(),
    }


# --- channels and users ---------------------------------------------------------------------------

def upsert_channels(db: Database, team_id: str, channels: Iterable[dict[str, Any]]) -> int:
    """Insert or rename channels (``{id, name, is_private, is_im}``); the watched flag is kept."""
    at = now()
    rows = [(team_id, c["id"], c.get("name") or c["id"], int(bool(c.get("is_private"))),
             int(bool(c.get("is_im"))), at) for c in channels]
    with _tx(db):
        db.conn.executemany(
            "INSERT INTO channels (team_id, id, name, is_private, is_im, watched, created_at) "
            "VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (team_id, id) DO UPDATE SET "
            "name = CASE WHEN excluded.name = excluded.id THEN channels.name ELSE excluded.name END, "
            "is_private = excluded.is_private, is_im = excluded.is_im",
            rows,
        )
    return len(rows)


def upsert_channel(db: Database, team_id: str, channel_id: str, name: str | None = None, *,
                   is_private: bool = False, is_im: bool = False) -> None:
    """Insert or rename one channel; the watched flag is kept."""
    upsert_channels(db, team_id, [{"id": channel_id, "name": name, "is_private": is_private,
                                   "is_im": is_im}])


def set_watched(db: Database, team_id: str, channel_id: str, watched: bool, by: str,
                name: str | None = None) -> None:
    """Watch or unwatch a channel (creating its row when needed)."""
    with _tx(db):
        if name or not db.execute("select 1 from channels where team_id = ? and id = ?",
                                  [team_id, channel_id]).fetchone():
            upsert_channel(db, team_id, channel_id, name)
        db.execute("update channels set watched = ?, watched_by = ? where team_id = ? and id = ?",
                   [int(watched), by, team_id, channel_id])


def is_watched(db: Database, team_id: str, channel_id: str) -> bool:
    """Whether live capture and backfill collect ``channel_id``."""
    row = db.execute("select watched from channels where team_id = ? and id = ?",
                     [team_id, channel_id]).fetchone()
    return bool(row and row[0])


def upsert_users(db: Database, team_id: str, users: Iterable[dict[str, Any]]) -> int:
    """Insert or refresh Slack user objects in the ``users`` cache."""
    at = now()
    rows = [user_row(team_id, u, at) for u in users if isinstance(u, dict) and u.get("id")]
    if rows:
        db["users"].upsert_all(rows, pk=("team_id", "id"))
    return len(rows)


def display_name(db: Database, team_id: str, user_id: str | None) -> str:
    """The name a transcript shows for ``user_id``: display name, real name, handle, or the id."""
    if not user_id:
        return "unknown"
    row = db.execute("select display_name, real_name, name from users where team_id = ? and id = ?",
                     [team_id, user_id]).fetchone()
    return next((v for v in row or () if v), user_id)


# --- messages -----------------------------------------------------------------------------------

def upsert_rows(db: Database, rows: list[tuple]) -> int:
    """Bulk-write message rows from :func:`message_row`; returns how many rows changed."""
    if not rows:
        return 0
    with _tx(db):
        # Plain inserts first: SQLite's DO UPDATE path costs about twice as much per row even when
        # nothing conflicts. Only a batch where some key already existed takes the merge pass
        # (rows inserted just now match themselves there and are left alone by its WHERE).
        # rowcount counts the statement's own rows, never the FTS triggers' writes.
        changed = db.conn.executemany(_INSERT, rows).rowcount
        if changed < len(rows):
            changed += db.conn.executemany(_UPSERT, rows).rowcount
        return changed


@contextmanager
def deferred_fts(db: Database) -> Iterator[None]:
    """Inside an open transaction: index the messages written in the block in one pass at its end.

    The per-row FTS triggers cost about ten times the insert itself; a bulk ``INSERT … SELECT``
    into the index costs less than the insert. The triggers are dropped for the block and
    restored before it ends (inside the same transaction, so a failure rolls the drop back too).
    Rows that existed before the block keep a temporary per-row trigger, so an update to one of
    them still moves its old text out of the index.
    """
    if not db.conn.in_transaction:
        raise RuntimeError("deferred_fts needs an open transaction")
    triggers = db.execute(
        "select name, sql from sqlite_master where type = 'trigger' and tbl_name = 'messages' "
        "and sql like '%messages_fts%'").fetchall()
    last = int(db.execute("select coalesce(max(rowid), 0) from messages").fetchone()[0])
    for name, _ in triggers:
        db.execute(f'drop trigger "{name}"')
    db.execute(
        f"create temp trigger threadtune_fts_old_rows after update on main.messages "
        f"when old.rowid <= {last} begin "
        "insert into messages_fts (messages_fts, rowid, text) values ('delete', old.rowid, old.text); "
        "insert into messages_fts (rowid, text) values (new.rowid, new.text); end")
    try:
        yield
        db.execute(f"insert into messages_fts (rowid, text) select rowid, text from messages "
                   f"where rowid > {last}")
    finally:
        db.execute("drop trigger if exists temp.threadtune_fts_old_rows")
    for _, sql in triggers:
        db.execute(sql)


def upsert_message(db: Database, team_id: str, channel_id: str, msg: dict[str, Any], source: str,
                   *, answered_reaction: str = "white_check_mark") -> bool:
    """Store one Slack message (new or redelivered) and link it to its thread; True if it changed."""
    with _tx(db):
        changed = upsert_rows(db, [message_row(team_id, channel_id, msg, source,
                                               answered_reaction=answered_reaction)])
        thread_ts = _str(msg.get("thread_ts"))
        if thread_ts and thread_ts != str(msg["ts"]):
            link_reply(db, team_id, channel_id, thread_ts)
    return bool(changed)


def link_reply(db: Database, team_id: str, channel_id: str, thread_ts: str) -> None:
    """After a live reply: the parent gets ``thread_ts == ts`` and its reply count."""
    db.execute(
        "update messages set thread_ts = ts, reply_count = max(reply_count, (select count(*) "
        "from messages r where r.team_id = messages.team_id and r.channel_id = messages.channel_id "
        "and r.thread_ts = messages.ts and r.ts != messages.ts)) "
        "where team_id = ? and channel_id = ? and ts = ? and deleted = 0",
        [team_id, channel_id, thread_ts],
    )


def apply_edit(db: Database, team_id: str, channel_id: str, ts: str, text: str,
               edited_ts: str | None) -> bool:
    """The stored text follows an edit (an older edit never overwrites a newer one)."""
    cur = db.execute(
        "update messages set text = ?, edited_ts = ?, updated_at = ? where team_id = ? and "
        "channel_id = ? and ts = ? and deleted = 0 and coalesce(edited_ts, '') <= ?",
        [clean_text(text), edited_ts, now(), team_id, channel_id, ts, edited_ts or ""],
    )
    return cur.rowcount > 0


def apply_delete(db: Database, team_id: str, channel_id: str, ts: str, *,
                 reason: str = "source message deleted in Slack", actor: str = "system",
                 via: str = "system", tombstone: bool = True) -> list[int]:
    """Remove a message's text and mark what was derived from it stale; returns those candidate ids.

    With ``tombstone`` a message that was never stored is recorded as deleted, so that a later
    import of an older export cannot bring its text back.
    """
    with _tx(db):
        row = db.execute("select thread_ts from messages where team_id = ? and channel_id = ? "
                         "and ts = ?", [team_id, channel_id, ts]).fetchone()
        at = now()
        if row is None:
            if tombstone:
                db.execute(
                    "insert into messages (team_id, channel_id, ts, text, deleted, deleted_at, "
                    "source, created_at, updated_at) values (?, ?, ?, NULL, 1, ?, 'delete', ?, ?)",
                    [team_id, channel_id, ts, at, at, at],
                )
            thread_ts = None
        else:
            thread_ts = row[0]
            db.execute(
                "update messages set text = NULL, reactions = NULL, deleted = 1, deleted_at = "
                "coalesce(deleted_at, ?), updated_at = ? where team_id = ? and channel_id = ? "
                "and ts = ?", [at, at, team_id, channel_id, ts],
            )
        # A pair drawn from a thread may quote any message of it: the thread's parent and, when
        # the parent goes, every reply count as sources too.
        keys = {ts}
        if thread_ts:
            keys.add(thread_ts)
            if thread_ts == ts:
                keys.update(r[0] for r in db.execute(
                    "select ts from messages where team_id = ? and channel_id = ? and thread_ts = ?",
                    [team_id, channel_id, ts]).fetchall())
        stale: list[int] = []
        for key in sorted(keys):
            stale += mark_derived_stale(db, team_id, channel_id, key, reason, actor=actor, via=via)
    return stale


def mark_derived_stale(db: Database, team_id: str, channel_id: str, ts: str, reason: str, *,
                       actor: str = "system", via: str = "system") -> list[int]:
    """Mark every candidate with a ``message`` source at ``(channel_id, ts)`` stale, with one
    ``reviews`` row (action ``stale``) each; returns the ids newly marked."""
    with _tx(db):
        ids = [r[0] for r in db.execute(
            "select distinct c.id from candidate_sources s join candidates c on c.id = s.candidate_id "
            "where s.team_id = ? and s.kind = 'message' and s.channel_id = ? and s.ts = ? "
            "and c.team_id = ? and coalesce(c.stale, 0) = 0",
            [team_id, channel_id, ts, team_id]).fetchall()]
        mark_stale(db, team_id, ids, reason, actor=actor, via=via)
    return ids


def mark_stale(db: Database, team_id: str, candidate_ids: list[int], reason: str, *,
               actor: str = "system", via: str = "system") -> None:
    """Mark candidates stale (they leave the next dataset version), one ``reviews`` row each."""
    at = now()
    with _tx(db):
        for cid in candidate_ids:
            db.execute("update candidates set stale = 1, stale_reason = ?, updated_at = ? where id = ?",
                       [reason, at, cid])
            db["reviews"].insert({"team_id": team_id, "candidate_id": cid, "actor": actor,
                                  "action": "stale", "reason": reason, "via": via, "at": at})


def apply_reaction(db: Database, team_id: str, channel_id: str, ts: str, name: str, user_id: str,
                   *, added: bool, answered_reaction: str) -> bool:
    """Record a reaction added or removed; the answered flag follows ``answered_reaction``.
    Returns False when the message is not stored (or deleted)."""
    with _tx(db):
        row = db.execute("select reactions from messages where team_id = ? and channel_id = ? "
                         "and ts = ? and deleted = 0", [team_id, channel_id, ts]).fetchone()
        if row is None:
            return False
        reactions = [r for r in loads(row[0], []) if isinstance(r, dict)]
        entry = next((r for r in reactions if r.get("name") == name), None)
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        users = [u for u in entry.get("users") or [] if u != user_id]
        if added:
            users.append(user_id)
        entry.update(users=users, count=len(users))
        reactions = [r for r in reactions if r["count"] > 0]
        db.execute(
            "update messages set reactions = ?, answered = ?, updated_at = ? where team_id = ? "
            "and channel_id = ? and ts = ?",
            [dumps(reactions) if reactions else None, _answered(reactions, answered_reaction), now(),
             team_id, channel_id, ts],
        )
    return True


def thread_messages(db: Database, team_id: str, channel_id: str, thread_ts: str) -> list[dict]:
    """A thread's stored, undeleted messages, parent first."""
    return [dict(r) for r in db.query(
        "select * from messages where team_id = ? and channel_id = ? and deleted = 0 and "
        "(ts = ? or thread_ts = ?) order by cast(ts as real)",
        [team_id, channel_id, thread_ts, thread_ts])]


def first_delivery(db: Database, event_id: str | None, team_id: str, *, scope: str = "") -> bool:
    """Record ``event_id`` as handled; False when it was handled before (a Slack retry).

    ``scope`` keeps independent consumers of one event apart: capture uses ``"capture"``, so that
    an answer listener calling ``first_delivery(db, event_id, team_id)`` still sees its first
    delivery. An event without an id always counts as first.
    """
    if not event_id:
        return True
    key = f"{scope}:{event_id}" if scope else event_id
    with _tx(db):
        cur = db.execute("insert or ignore into events_seen (event_id, team_id, received_at) "
                         "values (?, ?, ?)", [key, team_id, now()])
    return cur.rowcount == 1


def prune_events_seen(db: Database, *, older_than_days: int = 7) -> int:
    """Forget event ids older than ``older_than_days`` (Slack retries within hours); returns how many."""
    import datetime as dt

    cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)).isoformat(timespec="seconds")
    with _tx(db):
        return db.execute("delete from events_seen where received_at < ?", [cutoff]).rowcount
