"""Deleting a message: its text goes, and the candidates drawn from it are marked stale and redacted."""

from __future__ import annotations

from sqlite_utils import Database

from curation.erasure import redact_candidates
from curation.rows import valid_ts
from curation.store import joined_transaction, now


def apply_delete(db: Database, team_id: str, channel_id: str, ts: str, *,
                 reason: str = "source message deleted in Slack", actor: str = "system",
                 via: str = "system", tombstone: bool = True) -> list[int]:
    """Remove a message's text and mark what was derived from it stale; returns those candidate ids.

    With ``tombstone`` a message that was never stored is recorded as deleted, so that a later
    import of an older export cannot bring its text back.
    """
    tombstone = tombstone and valid_ts(ts)  # a malformed ts names no message Slack could send
    with joined_transaction(db):
        row = db.execute("select thread_ts, user_id from messages where team_id = ? and "
                         "channel_id = ? and ts = ?", [team_id, channel_id, ts]).fetchone()
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
            # A question to the bot: the answer row kept a copy of it (the bot answers in the
            # question's thread).
            for table in ("answers", "escalations"):
                db.execute(f"update {table} set question = '' where team_id = ? and channel_id = ? "
                           "and thread_ts = ? and user_id = ?", [team_id, channel_id, ts, row[1]])
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
    """Mark every candidate with a ``message`` source at ``(channel_id, ts)`` stale and redact its
    text (:func:`curation.erasure.redact_candidates`); returns the ids newly marked."""
    with joined_transaction(db):
        rows = db.execute(
            "select distinct c.id, c.stale, c.question from candidate_sources s join candidates c "
            "on c.id = s.candidate_id where s.team_id = ? and s.kind = 'message' and s.channel_id = ? "
            "and s.ts = ? and c.team_id = ?", [team_id, channel_id, ts, team_id]).fetchall()
        redact_candidates(db, team_id, [r[0] for r in rows if not r[1] or r[2]], reason,
                          actor=actor, via=via)
    return [r[0] for r in rows if not r[1]]
