"""Writing Slack messages into the store: new messages, redeliveries, thread links, edits and reactions.

Every path that brings Slack data in (live events, Web API backfill, export import) goes through
these functions, so the rules hold everywhere:

- a message is keyed by ``(team_id, channel_id, ts)``: a redelivery or a rerun updates, never
  duplicates;
- a deleted message stays deleted: later imports or backfills never bring it back (deleting is
  :mod:`curation.deletion`);
- an older copy of a message (an export taken before an edit) never overwrites a newer edit;
- thread convention: replies carry ``thread_ts``; a parent with replies has ``thread_ts == ts``;
  a top-level message without replies has ``thread_ts`` NULL.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from curation.rows import MESSAGE_COLUMNS, answered_flag, clean_text, message_row, scalar_text
from curation.store import dumps, joined_transaction, loads, now

_VALUES = f"({', '.join(MESSAGE_COLUMNS)}) VALUES ({', '.join('?' for _ in MESSAGE_COLUMNS)})"
_INSERT = f"INSERT INTO messages {_VALUES} ON CONFLICT (team_id, channel_id, ts) DO NOTHING"
# The merge rule for a message already stored. The WHERE keeps deleted messages deleted, and
# skips rows that did not change, so that a rerun writes nothing (and the FTS triggers do no work).
_UPSERT = f"""
INSERT INTO messages {_VALUES}
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


def upsert_rows(db: Database, rows: list[tuple]) -> int:
    """Bulk-write message rows from :func:`message_row`; returns how many rows changed."""
    if not rows:
        return 0
    with joined_transaction(db):
        # Plain inserts first: SQLite's DO UPDATE path costs about twice as much per row even when
        # nothing conflicts. Only a batch where some key already existed takes the merge pass
        # (rows inserted just now match themselves there and are left alone by its WHERE).
        # rowcount counts the statement's own rows, never the FTS triggers' writes.
        changed = db.conn.executemany(_INSERT, rows).rowcount
        if changed < len(rows):
            changed += db.conn.executemany(_UPSERT, rows).rowcount
        return changed


def upsert_message(db: Database, team_id: str, channel_id: str, msg: dict[str, Any], source: str,
                   *, answered_reaction: str = "white_check_mark") -> bool:
    """Store one Slack message (new or redelivered) and link it to its thread; True if it changed."""
    with joined_transaction(db):
        changed = upsert_rows(db, [message_row(team_id, channel_id, msg, source,
                                               answered_reaction=answered_reaction)])
        thread_ts = scalar_text(msg.get("thread_ts"))
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


def apply_reaction(db: Database, team_id: str, channel_id: str, ts: str, name: str, user_id: str,
                   *, added: bool, answered_reaction: str) -> bool:
    """Record a reaction added or removed; the answered flag follows ``answered_reaction``.
    Returns False when the message is not stored (or deleted)."""
    with joined_transaction(db):
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
            [dumps(reactions) if reactions else None, answered_flag(reactions, answered_reaction), now(),
             team_id, channel_id, ts],
        )
    return True


def thread_messages(db: Database, team_id: str, channel_id: str, thread_ts: str) -> list[dict]:
    """A thread's stored, undeleted messages, parent first."""
    return [dict(r) for r in db.query(
        "select * from messages where team_id = ? and channel_id = ? and deleted = 0 and "
        "(ts = ? or thread_ts = ?) order by cast(ts as real)",
        [team_id, channel_id, thread_ts, thread_ts])]
