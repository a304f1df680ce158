"""Candidates: every question/answer pair enters the store through :func:`add_candidate`.

It scrubs PII, runs the checks, finds near-duplicates and writes the pair with its sources in one
transaction. It is idempotent: the same pair from the same sources is stored once (``dedup_key``).
Curation runs, the FAQ modal (origin ``manual``), 👎 corrections (``feedback``) and dataset imports
(``import``) all call it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from curation import checks
from curation.dedup import find_duplicate, question_key
from curation.errors import NotFound
from curation.pii import scrub
from curation.store import dumps, loads, now, transaction

ORIGINS = ("thread", "deterministic", "document", "announcement", "manual", "feedback", "import", "escalation")
SYSTEM_ACTOR = "threadtune"


@dataclass(frozen=True)
class Added:
    """What :func:`add_candidate` did."""

    id: int
    status: str  # pending | auto_rejected | variant (or the stored status when not created)
    created: bool  # False when the same pair from the same sources was already stored
    variant_of: int | None = None
    reason: str | None = None
    scrub_count: int = 0


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip().lower()


def source_key(source: dict[str, Any]) -> str:
    """A stable key for one source: ``message:C1:123.456`` or ``document:7``."""
    if source.get("kind") == "document":
        return f"document:{source.get('document_id')}"
    return f"message:{source.get('channel_id')}:{source.get('ts')}"


def dedup_key(question: str, answer: str, sources: Iterable[dict[str, Any]]) -> str:
    """Idempotency key: the sources and the normalised pair (so reruns store nothing twice)."""
    payload = json.dumps([sorted(source_key(s) for s in sources), _norm(question), _norm(answer)])
    return hashlib.sha256(payload.encode()).hexdigest()


def add_candidate(
    db: Database,
    team_id: str,
    question: str,
    answer: str,
    *,
    origin: str,
    sources: Iterable[dict[str, Any]] = (),
    prompt_version: str | None = None,
    evidence: str | None = None,
    scores: dict[str, Any] | None = None,
    created_by: str = SYSTEM_ACTOR,
    source_text: str | None = None,
) -> Added:
    """Scrub, check, dedupe and store one pair; returns what happened.

    ``sources`` are dicts ``{kind: "message", channel_id, ts, permalink?}`` or ``{kind: "document",
    document_id}``. ``scores`` are checks the caller already ran (``{name: Check | dict}``); with
    ``source_text`` the grounding check runs here. A pair that fails a check is stored as
    ``auto_rejected`` with the reason; one that asks what a pending or approved pair asks becomes its
    ``variant``.
    """
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}, not {origin!r}")
    sources = [dict(s) for s in sources]
    q, a, e = scrub(question), scrub(answer), scrub(evidence)
    scrub_count = q.count + a.count + e.count
    computed: dict[str, Any] = dict(checks.pair_checks(q.text, a.text))
    if source_text is not None:
        computed["grounding"] = checks.grounding(a.text, scrub(source_text).text)
    for name, value in (scores or {}).items():
        computed[name] = value
    stored_scores = {n: (v.as_dict() if isinstance(v, checks.Check) else v) for n, v in computed.items()}
    stored_scores["pii"] = {"score": 1.0, "passed": True, "reason": f"{scrub_count} scrubbed",
                            "count": scrub_count}
    passed, reason = checks.verdict(stored_scores)
    key = dedup_key(q.text, a.text, sources)
    with transaction(db):
        existing = db.execute(
            "select id, status, variant_of, reject_reason, scrub_count from candidates "
            "where team_id = ? and dedup_key = ?", [team_id, key]
        ).fetchone()
        if existing:
            return Added(existing[0], existing[1], False, existing[2], existing[3], existing[4] or 0)
        variant_of = find_duplicate(db, team_id, q.text) if passed else None
        status = "pending" if passed and variant_of is None else ("variant" if passed else "auto_rejected")
        stamp = now()
        row = {
            "team_id": team_id, "question": q.text, "answer": a.text, "evidence": e.text or None,
            "status": status, "variant_of": variant_of, "scores": dumps(stored_scores),
            "reject_reason": None if passed else reason, "prompt_version": prompt_version,
            "origin": origin, "scrub_count": scrub_count, "approvals": "[]", "stale": 0,
            "dedup_key": key, "question_key": question_key(q.text), "created_by": created_by,
            "created_at": stamp, "updated_at": stamp,
        }
        # A plain INSERT: sqlite-utils' insert() introspects the table on every call, which is a
        # third of the cost of adding a pair at 100k pairs (bench/dedup.py).
        cid = db.execute(
            f"insert into candidates ({', '.join(row)}) values ({', '.join('?' * len(row))})",
            list(row.values()),
        ).lastrowid
        if sources:
            db.conn.executemany(
                "insert into candidate_sources (team_id, candidate_id, kind, channel_id, ts, "
                "document_id, permalink) values (?, ?, ?, ?, ?, ?, ?)",
                [(team_id, cid, s.get("kind") or "message", s.get("channel_id"), s.get("ts"),
                  s.get("document_id"), s.get("permalink")) for s in sources],
            )
        if not passed:
            db["reviews"].insert({
                "team_id": team_id, "candidate_id": cid, "actor": SYSTEM_ACTOR,
                "action": "auto_reject", "before": None,
                "after": dumps({"status": status, "question": q.text, "answer": a.text}),
                "reason": reason, "via": "system", "at": stamp,
            })
    return Added(int(cid), status, True, variant_of, None if passed else reason, scrub_count)


# --- reading ---------------------------------------------------------------------------------


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["scores"] = loads(row.get("scores"), {})
    row["approvals"] = loads(row.get("approvals"), [])
    return row


def get_candidate(db: Database, team_id: str, candidate_id: int) -> dict[str, Any]:
    """One candidate with decoded ``scores``/``approvals`` and its ``sources``; NotFound if absent."""
    rows = list(db.query("select * from candidates where team_id = ? and id = ?", [team_id, candidate_id]))
    if not rows:
        raise NotFound(f"candidate {candidate_id} does not exist in team {team_id}; "
                       "see `threadtune review list`")
    row = _decode(rows[0])
    row["sources"] = list(db.query(
        "select kind, channel_id, ts, document_id, permalink from candidate_sources "
        "where candidate_id = ? order by id", [candidate_id]))
    return row


def list_candidates(db: Database, team_id: str, *, status: str | None = None,
                    limit: int | None = None, include_stale: bool = True) -> list[dict[str, Any]]:
    """Candidates of a team, oldest first, optionally of one status, each with its sources."""
    where, args = ["team_id = ?"], [team_id]
    if status:
        where.append("status = ?")
        args.append(status)
    if not include_stale:
        where.append("stale = 0")
    sql = f"select * from candidates where {' and '.join(where)} order by id"
    if limit:
        sql += f" limit {int(limit)}"
    rows = [_decode(r) for r in db.query(sql, args)]
    if rows:
        by_id: dict[int, list] = {r["id"]: [] for r in rows}
        marks = ",".join("?" * len(by_id))
        for s in db.query(
            f"select candidate_id, kind, channel_id, ts, document_id, permalink from candidate_sources "
            f"where candidate_id in ({marks}) order by id", list(by_id)
        ):
            by_id[s.pop("candidate_id")].append(s)
        for r in rows:
            r["sources"] = by_id[r["id"]]
    return rows
