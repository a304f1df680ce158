"""Which terms of a model-written answer some approved text supports: the store side of the answer
pipeline's grounding flags (``curation.answer_modes.unsupported_terms`` is the pure side).

A term that is in no retrieved pair is looked up among all approved pairs of the team with one FTS5
phrase query, then confirmed in the text (FTS matches words, the check wants the exact term).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from curation.answer_modes import supported, unsupported_terms
from curation.visibility import visible_sql

_WORD = re.compile(r"\w+", re.UNICODE)
#: Pairs read per term to confirm a phrase match.
_PROBE = 20


def in_approved(db: Any, team_id: str, terms: list[str], visible_in: str | None = None) -> set[str]:
    """The ``terms`` that occur in some approved, non-stale pair of ``team_id`` that may be seen in
    channel ``visible_in`` (curation.visibility; None: pairs that may answer anywhere)."""
    found: set[str] = set()
    for term in terms:
        words = _WORD.findall(term.lower())[:16]
        if not words:
            continue
        phrase = '"' + " ".join(words).replace('"', '""') + '"'
        rows = db.execute(
            "select c.question, c.answer from candidates_fts f join candidates c on c.rowid = f.rowid "
            "where candidates_fts match ? and c.team_id = ? and c.status = 'approved' and c.stale = 0 "
            f"and {visible_sql('c')} limit ?", [phrase, team_id, visible_in, _PROBE]).fetchall()
        if any(supported(term, f"{q}\n{a}") for q, a in rows):
            found.add(term)
    return found


def flags_for(text: str, question: str, pairs: list[dict[str, Any]],
              known: Callable[[list[str]], set[str]]) -> list[str]:
    """Numbers, URLs, commands and names in a generated answer that appear in no retrieved pair, not
    in the question, and (``known``: the terms some approved pair holds) in no approved pair: what
    the reply marks as unverified. The eval's ``bot`` system calls this with the same ``known``."""
    sources = [question] + [f"{p['question']}\n{p['answer']}" for p in pairs]
    missing = unsupported_terms(text, sources)
    if not missing:
        return []
    found = known(missing)
    return [t for t in missing if t not in found]


def answer_flags(db: Any, team_id: str, text: str, question: str, pairs: list[dict[str, Any]],
                 visible_in: str | None = None) -> list[str]:
    """:func:`flags_for` against the approved pairs of ``team_id`` that may be seen in ``visible_in``."""
    return flags_for(text, question, pairs, lambda terms: in_approved(db, team_id, terms, visible_in))
