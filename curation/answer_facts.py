"""Which terms some approved pair of the team holds: what the eval's wrong-fact rate forgives (a
figure from any approved answer is not made up). The answers themselves are grounded only in the
pairs retrieved for their question (``curation.answer_modes.check_generated``): a figure from
another topic's answer is no support for this one.

Each term is looked up with one FTS5 phrase query, then confirmed in the text (FTS matches words,
the check wants the exact term).
"""

from __future__ import annotations

import re
from typing import Any

from curation.answer_modes import supported
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
