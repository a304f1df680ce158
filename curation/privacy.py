"""Privacy: forget a user, purge by retention. Text goes; derived pairs are marked stale and
redacted, leave the next dataset version, and reviewers are told (the caller posts the notice)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlite_utils import Database

from curation.deletion import apply_delete
from curation.erasure import redact_candidates
from curation.rows import VALID_TS_SQL
from curation.store import audit, now, transaction


@dataclass
class Forgotten:
    """What a forget or purge removed."""

    messages: int = 0
    stale_candidates: list[int] = field(default_factory=list)
    candidates_deleted: int = 0

    def summary(self) -> str:
        return (f"{self.messages} messages removed, {len(self.stale_candidates)} derived pairs marked "
                f"stale and redacted, {self.candidates_deleted} pairs they submitted dropped")


def forget_user(db: Database, team_id: str, user_id: str, *, actor: str, via: str = "cli") -> Forgotten:
    """Remove every stored message of ``user_id`` in ``team_id`` and redact the pairs derived from
    them; drop the pairs the user submitted (FAQ modal, 👎 corrections, imports), approved ones
    included; blank their corrections, their questions to the bot and their profile; audit it.

    Dataset versions holding any of those pairs are superseded (:mod:`curation.erasure`). Adapters
    already trained keep what they learned: the README says that models must be retrained. Call
    :func:`curation.erasure.erase_residue` after this returns.
    """
    out = Forgotten()
    reason = f"forgotten: messages of user {user_id}"
    with transaction(db):
        rows = db.execute(
            "select channel_id, ts from messages where team_id = ? and user_id = ? and deleted = 0",
            [team_id, user_id],
        ).fetchall()
        for channel_id, ts in rows:
            out.stale_candidates += apply_delete(db, team_id, channel_id, ts, reason=reason,
                                                 actor=actor, via=via)
        out.messages = len(rows)
        own = [r[0] for r in db.execute(
            "select id from candidates where team_id = ? and created_by = ? and question != ''",
            [team_id, user_id]).fetchall()]
        approved_own = [r[0] for r in db.execute(
            "select id from candidates where team_id = ? and created_by = ? and status = 'approved' "
            "and stale = 0", [team_id, user_id]).fetchall()]
        redact_candidates(db, team_id, own, reason, actor=actor, via=via, status="rejected")
        out.stale_candidates += approved_own
        out.candidates_deleted = len(own)
        db.execute("update feedback set correction = NULL where user_id = ? and answer_id in "
                   "(select id from answers where team_id = ?)", [user_id, team_id])
        db.execute("update answers set question = '' where team_id = ? and user_id = ?", [team_id, user_id])
        db.execute("update escalations set question = '' where team_id = ? and user_id = ?",
                   [team_id, user_id])
        db.execute("update users set name = NULL, real_name = NULL, display_name = NULL, deleted = 1 "
                   "where team_id = ? and id = ?", [team_id, user_id])
        out.stale_candidates = sorted(set(out.stale_candidates))
        audit(db, team_id, actor, "forget", user_id, detail={
            "messages": out.messages, "stale_candidates": out.stale_candidates,
            "candidates_deleted": out.candidates_deleted}, via=via)
    return out


def purge_older_than(db: Database, team_id: str, days: int, *, actor: str = "retention",
                     via: str = "system", today: dt.datetime | None = None) -> Forgotten:
    """Purge raw messages older than ``days`` (by Slack ts).

    Retention is about raw chat, not curated knowledge: approved pairs hold their own scrubbed text
    and stay in datasets. A user's deletion or a forget, by contrast, marks derived pairs stale."""
    if days < 1:
        raise ValueError("retention must be at least 1 day")
    cutoff = ((today or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)).timestamp()
    out = Forgotten()
    with transaction(db):
        rows = db.execute(
            "select channel_id, ts from messages where team_id = ? and deleted = 0 and "
            f"{VALID_TS_SQL} and cast(ts as real) < ?", [team_id, cutoff]).fetchall()
        for channel_id, ts in rows:
            db.execute("update messages set text = NULL, reactions = NULL, deleted = 1, deleted_at = ?, "
                       "updated_at = ? where team_id = ? and channel_id = ? and ts = ?",
                       [now(), now(), team_id, channel_id, ts])
        out.messages = len(rows)
        if rows:
            audit(db, team_id, actor, "purge", f"{days} days", detail={"messages": out.messages}, via=via)
    return out
