"""Open questions: what the bot could not answer, asked of the team. The store side (no Slack):
open one, find it from its review thread, attach the candidate an expert's reply became, and list
the askers to tell once that candidate is approved.

status: ``open`` (posted, waiting for an expert) → ``answered`` (a candidate exists, in review) →
``notified`` (approved, and the asker was told in their thread).

The same question asked again while it is still open or in review joins the first one: one more
row on the same review thread, so one expert reply answers both and both askers are told.
"""

from __future__ import annotations

from typing import Any

from curation.dedup import content_stems, same_question
from curation.store import now, transaction

#: Open questions compared against a new one (the newest first).
_RECENT = 500


def open_escalation(db: Any, team_id: str, *, channel_id: str, thread_ts: str, user_id: str,
                    question: str, answer_id: int | None, review_channel: str, review_ts: str) -> int:
    """Record an open question posted at ``review_channel``/``review_ts``; returns its id."""
    with transaction(db):
        return int(db["escalations"].insert({
            "team_id": team_id, "channel_id": channel_id, "thread_ts": thread_ts, "user_id": user_id,
            "question": question, "answer_id": answer_id, "review_channel": review_channel,
            "review_ts": review_ts, "status": "open", "created_at": now(), "updated_at": now(),
        }).last_pk)


def _rows(db: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in db.query(sql, params)]


def open_in_thread(db: Any, team_id: str, review_channel: str, review_ts: str) -> dict[str, Any] | None:
    """The open question whose review post is ``review_ts`` (None: not an open question)."""
    rows = _rows(db, "select * from escalations where team_id = ? and review_channel = ? and review_ts = ? "
                 "and status = 'open'", [team_id, review_channel, review_ts])
    return rows[0] if rows else None


def same_pending(db: Any, team_id: str, question: str) -> dict[str, Any] | None:
    """The open or in-review question of ``team_id`` that asks the same as ``question``
    (curation.dedup.same_question), the newest; None when there is none."""
    stems = content_stems(question)
    for row in _rows(db, "select * from escalations where team_id = ? and status in ('open', 'answered') "
                     "order by id desc limit ?", [team_id, _RECENT]):
        if same_question(stems, row["question"]):
            return row
    return None


def join_escalation(db: Any, first: dict[str, Any], *, channel_id: str, thread_ts: str, user_id: str,
                    question: str, answer_id: int | None) -> int:
    """Record ``question`` as asked again on ``first``'s review thread (same status and candidate)."""
    with transaction(db):
        return int(db["escalations"].insert({
            "team_id": first["team_id"], "channel_id": channel_id, "thread_ts": thread_ts,
            "user_id": user_id, "question": question, "answer_id": answer_id,
            "review_channel": first["review_channel"], "review_ts": first["review_ts"],
            "candidate_id": first["candidate_id"], "status": first["status"], "created_at": now(),
            "updated_at": now(),
        }).last_pk)


def attach_candidate(db: Any, escalation_id: int, candidate_id: int) -> bool:
    """Mark an open question (and those that joined it) answered by ``candidate_id``; False when
    another reply got there first."""
    with transaction(db):
        cur = db.execute(
            "update escalations set candidate_id = ?, status = 'answered', updated_at = ? where status = 'open' "
            "and (team_id, review_channel, review_ts) = (select team_id, review_channel, review_ts from "
            "escalations where id = ?)", [candidate_id, now(), escalation_id])
        return cur.rowcount >= 1


def to_notify(db: Any, team_id: str, candidate_id: int) -> list[dict[str, Any]]:
    """Answered questions whose candidate ``candidate_id`` is now approved: their askers are due a note."""
    return _rows(db, "select e.* from escalations e join candidates c on c.id = e.candidate_id "
                 "where e.team_id = ? and e.status = 'answered' and c.status = 'approved' and c.id = ?",
                 [team_id, candidate_id])


def mark_notified(db: Any, escalation_id: int) -> None:
    """The asker was told."""
    with transaction(db):
        db.execute("update escalations set status = 'notified', updated_at = ? where id = ?",
                   [now(), escalation_id])
