"""Deleting a message, and marking the candidates drawn from it stale."""

from __future__ import annotations

from sqlite_utils import Database

from curation.store import joined_transaction, now


def apply_delete(db: Database, team_id: str, channel_id: str, ts: str, *,
                 reason: str = "source message deleted in Slack", actor: str = "system",
                 via: str = "system", tombstone: bool = True) -> list[int]:
    """Remove a message's text and mark what was derived from it stale; returns those candidate ids.

    With ``tombstone`` a message that was never stored is recorded as deleted, so that a later
    import of an older export cannot bring its text back.
    """
    with joined_transaction(db):
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
    with joined_transaction(db):
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
    with joined_transaction(db):
        for cid in candidate_ids:
            db.execute("update candidates set stale = 1, stale_reason = ?, updated_at = ? where id = ?",
                       [reason, at, cid])
            db["reviews"].insert({"team_id": team_id, "candidate_id": cid, "actor": actor,
                                  "action": "stale", "reason": reason, "via": via, "at": at})
