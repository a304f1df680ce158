"""Retrieval of approved pairs for prompts: FTS5 (BM25) over ``candidates_fts``.

Used by answers (serving) and by evaluation's "+ retrieval" systems, so both prompt the same way.
"""

from __future__ import annotations

import re
from typing import Any

from curation.visibility import visible_sql

_WORD = re.compile(r"\w+", re.UNICODE)
#: Words too common to help ranking (FTS5's porter tokenizer keeps them).
_STOP = frozenset(
    "a an and are as at be but by can do does for from how i if in is it my of on or so that the "
    "this to was what when where which who why will with you your".split()
)


def fts_query(question: str) -> str:
    """An FTS5 MATCH expression for free text: its words, quoted, OR-ed (never a syntax error)."""
    words = [w for w in _WORD.findall(question.lower()) if w not in _STOP]
    if not words:
        words = _WORD.findall(question.lower())
    unique = list(dict.fromkeys(words))[:32]
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in unique)


def top_pairs(db: Any, team_id: str, question: str, k: int = 3, *,
              visible_in: str | None = None) -> list[dict[str, Any]]:
    """The ``k`` approved pairs of ``team_id`` that best match ``question`` (BM25), best first.

    Only pairs that may be seen in ``visible_in``, the channel where the question was asked
    (:mod:`curation.visibility`): a pair from a private channel or a DM answers only there, unless
    an admin shared the channel. ``None`` (no channel: the CLI, evaluation) means pairs that may
    answer anywhere.

    Each is ``{"id", "question", "answer", "bm25"}`` (``bm25``: FTS5's score, lower is better); the
    best one also has ``bm25_self``, the score its own question gets for it (the most it could
    score: curation.answer_match uses the ratio). Empty when nothing matches. Stale pairs (whose
    source was deleted or forgotten) are never retrieved.
    """
    match = fts_query(question)
    if not match or k < 1:
        return []
    rows = db.execute(
        "select c.id, c.question, c.answer, bm25(candidates_fts) from candidates_fts f join candidates c on c.rowid = f.rowid "
        "where candidates_fts match ? and c.team_id = ? and c.status = 'approved' and c.stale = 0 "
        f"and {visible_sql('c')} order by bm25(candidates_fts) limit ?",
        [match, team_id, visible_in, k],
    ).fetchall()
    pairs = [{"id": r[0], "question": r[1], "answer": r[2], "bm25": r[3]} for r in rows]
    if pairs:
        pairs[0]["bm25_self"] = self_score(db, pairs[0])
    return pairs


def self_score(db: Any, pair: dict[str, Any]) -> float:
    """FTS5's BM25 score of ``pair`` for its own question as the query (0.0 when it has no words)."""
    match = fts_query(pair["question"])
    row = db.execute("select bm25(candidates_fts) from candidates_fts where candidates_fts match ? "
                     "and rowid = (select rowid from candidates where id = ?)", [match, pair["id"]]).fetchone() \
        if match else None
    return float(row[0]) if row else 0.0
