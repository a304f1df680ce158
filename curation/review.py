"""The review state machine, shared by Slack and the CLI: approve (with a quorum), edit, reject.

Transitions::

    pending / auto_rejected --approve (quorum reached)--> approved
    pending / auto_rejected / approved --edit--> pending (approvals reset: they were for other text)
    pending / auto_rejected / approved / variant --reject (reason)--> rejected

Every action writes a ``reviews`` row (who, when, before, after, reason, via) and an ``audit`` row,
in the same transaction as the change. Role checks happen at the edges (bot, CLI); this module
trusts its caller about who the actor is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from curation import checks
from curation.candidates import get_candidate
from curation.dedup import question_key
from curation.errors import CurationError
from curation.pii import scrub
from curation.store import audit, dumps, now, transaction

APPROVABLE = ("pending", "auto_rejected")
EDITABLE = ("pending", "auto_rejected", "approved")
REJECTABLE = ("pending", "auto_rejected", "approved", "variant")


@dataclass(frozen=True)
class Decision:
    """The result of a review action: the candidate after it, and what changed."""

    candidate: dict[str, Any]
    changed: bool
    message: str


def _snapshot(c: dict[str, Any]) -> dict[str, Any]:
    return {"status": c["status"], "question": c["question"], "answer": c["answer"],
            "approvals": c["approvals"]}


def _record(db: Database, team_id: str, candidate_id: int, actor: str, action: str,
            before: dict[str, Any], after: dict[str, Any], reason: str | None, via: str,
            operator: str | None = None) -> None:
    db["reviews"].insert({
        "team_id": team_id, "candidate_id": candidate_id, "actor": actor, "action": action,
        "before": dumps(before), "after": dumps(after), "reason": reason, "via": via, "at": now(),
        "operator": operator,
    })
    detail: dict[str, Any] = {"status": after.get("status"), "reason": reason}
    if operator and operator != actor:
        detail["operator"] = f"operator {operator} acting as {actor}"
    audit(db, team_id, actor, f"review.{action}", f"candidate:{candidate_id}", detail=detail, via=via)


def _operator_approved(db: Database, candidate_id: int, operator: str) -> str | None:
    """Whom ``operator`` already approved ``candidate_id`` as, since its last edit."""
    row = db.execute(
        "select actor from reviews where candidate_id = ? and action = 'approve' and operator = ? "
        "and id > coalesce((select max(id) from reviews where candidate_id = ? and action = 'edit'), 0)",
        [candidate_id, operator, candidate_id]).fetchone()
    return row[0] if row else None


def approve(db: Database, team_id: str, candidate_id: int, actor: str, *, via: str = "cli",
            quorum: int = 1, operator: str | None = None) -> Decision:
    """Count ``actor``'s approval; the pair is approved once ``quorum`` reviewers approved it.

    ``operator`` is who typed the command when it acts as ``actor`` (the CLI's ``--as``): a quorum
    counts distinct people, so one operator's approvals count once whoever they act as."""
    with transaction(db):
        c = get_candidate(db, team_id, candidate_id)
        if c["status"] == "approved":
            return Decision(c, False, f"candidate {candidate_id} is already approved")
        if c["status"] not in APPROVABLE:
            raise CurationError(
                f"candidate {candidate_id} is {c['status']}; only pending or auto-rejected pairs can "
                "be approved (edit it first to reopen it)"
            )
        if c["stale"]:
            why = c["stale_reason"] or "its source was deleted"
            raise CurationError(f"candidate {candidate_id} is stale ({why}); it cannot be approved")
        before = _snapshot(c)
        approvals = list(c["approvals"])
        if actor in approvals:
            return Decision(c, False, f"<@{actor}> already approved candidate {candidate_id} "
                            f"({len(approvals)}/{quorum} approvals)")
        earlier = _operator_approved(db, candidate_id, operator) if operator else None
        if earlier is not None:
            return Decision(c, False, f"{operator} already approved candidate {candidate_id} (as "
                            f"{earlier}); a quorum counts distinct people, so it needs another reviewer")
        approvals.append(actor)
        status = "approved" if len(approvals) >= quorum else c["status"]
        db["candidates"].update(candidate_id, {"approvals": dumps(approvals), "status": status,
                                               "updated_at": now()})
        after = {**before, "status": status, "approvals": approvals}
        _record(db, team_id, candidate_id, actor, "approve", before, after, None, via, operator)
        c = get_candidate(db, team_id, candidate_id)
    message = (f"approved by {', '.join(approvals)}" if status == "approved"
               else f"{len(approvals)}/{quorum} approvals")
    return Decision(c, True, message)


def reject(db: Database, team_id: str, candidate_id: int, actor: str, reason: str, *,
           via: str = "cli", operator: str | None = None) -> Decision:
    """Reject the pair with a reason (required)."""
    reason = (reason or "").strip()
    if not reason:
        raise CurationError(f"rejecting candidate {candidate_id} needs a reason (--reason TEXT)")
    with transaction(db):
        c = get_candidate(db, team_id, candidate_id)
        if c["status"] == "rejected":
            return Decision(c, False, f"candidate {candidate_id} is already rejected")
        if c["status"] not in REJECTABLE:
            raise CurationError(f"candidate {candidate_id} is {c['status']} and cannot be rejected")
        before = _snapshot(c)
        db["candidates"].update(candidate_id, {"status": "rejected", "reject_reason": reason,
                                               "updated_at": now()})
        after = {**before, "status": "rejected"}
        _record(db, team_id, candidate_id, actor, "reject", before, after, reason, via, operator)
        c = get_candidate(db, team_id, candidate_id)
    return Decision(c, True, f"rejected: {reason}")


def edit(db: Database, team_id: str, candidate_id: int, actor: str, *, question: str | None = None,
         answer: str | None = None, via: str = "cli", operator: str | None = None) -> Decision:
    """Replace the question and/or answer. The text is scrubbed and checked for length and
    degeneration; the pair goes back to pending with its approvals reset."""
    with transaction(db):
        c = get_candidate(db, team_id, candidate_id)
        if c["status"] not in EDITABLE:
            raise CurationError(f"candidate {candidate_id} is {c['status']}; only pending, "
                                "auto-rejected or approved pairs can be edited")
        q = scrub(c["question"] if question is None else question)
        a = scrub(c["answer"] if answer is None else answer)
        problems = checks.pair_checks(q.text, a.text)
        ok, why = checks.verdict(problems)
        if not ok:
            raise CurationError(f"the edit of candidate {candidate_id} was not saved: {why}")
        before = _snapshot(c)
        if q.text == c["question"] and a.text == c["answer"]:
            return Decision(c, False, f"candidate {candidate_id} is unchanged")
        scores = dict(c["scores"])
        scores.update({n: v.as_dict() for n, v in problems.items()})
        scores.pop("grounding", None)  # a reviewer's words are their own
        scores["pii"] = {"score": 1.0, "passed": True, "count": c["scrub_count"] + q.count + a.count,
                         "reason": f"{c['scrub_count'] + q.count + a.count} scrubbed"}
        db["candidates"].update(candidate_id, {
            "question": q.text, "answer": a.text, "status": "pending", "approvals": "[]",
            "reject_reason": None, "scores": dumps(scores), "question_key": question_key(q.text),
            "scrub_count": c["scrub_count"] + q.count + a.count, "updated_at": now(),
        })
        after = {"status": "pending", "question": q.text, "answer": a.text, "approvals": []}
        _record(db, team_id, candidate_id, actor, "edit", before, after, None, via, operator)
        c = get_candidate(db, team_id, candidate_id)
    return Decision(c, True, "edited; it needs approval again")


def approve_imported(db: Database, team_id: str, candidate_id: int, actor: str, *,
                     via: str = "cli", operator: str | None = None) -> Decision:
    """An admin takes an already-curated pair straight to approved (``dataset import --approved``)."""
    with transaction(db):
        c = get_candidate(db, team_id, candidate_id)
        if c["status"] in ("approved", "rejected", "auto_rejected", "variant"):
            return Decision(c, False, f"candidate {candidate_id} is {c['status']}")
        before = _snapshot(c)
        db["candidates"].update(candidate_id, {"status": "approved", "approvals": dumps([actor]),
                                               "updated_at": now()})
        after = {**before, "status": "approved", "approvals": [actor]}
        _record(db, team_id, candidate_id, actor, "import_approved", before, after,
                "imported as already curated", via, operator)
        c = get_candidate(db, team_id, candidate_id)
    return Decision(c, True, "approved on import")


def history(db: Database, team_id: str, candidate_id: int) -> list[dict[str, Any]]:
    """The review rows of one candidate, oldest first."""
    return list(db.query("select actor, action, reason, via, at, before, after from reviews "
                         "where team_id = ? and candidate_id = ? order by id", [team_id, candidate_id]))
