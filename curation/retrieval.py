"""Retrieval of approved pairs for prompts: BM25 over a workspace's approved, non-stale pairs.

Used by answers (the bot, ``threadtune ask``) and by evaluation, so all of them rank the same way.
The ranking is FTS5's BM25 formula over the same tokens, computed by an in-memory index per store
and workspace (:mod:`curation.bm25_index`) that each lookup first brings in step with the store's
change log (migration m012), so that a lookup costs a few milliseconds at 100k pairs instead of
FTS5's ~100 ms. Who may see a pair is checked in SQL on the ranked candidates.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from curation.bm25_index import Bm25Index
from curation.visibility import visible_sql

#: Runs of letters and digits, as FTS5's tokenizer cuts words ("max_tokens" is two words).
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
#: Words too common to help ranking (FTS5's porter tokenizer keeps them).
_STOP = frozenset(
    "a an and are as at be but by can do does for from how i if in is it my of on or so that the "
    "this to was what when where which who why will with you your".split()
)
#: Past this share of pairs changed since the index was built, it is rebuilt.
REBUILD_SHARE = 0.05
#: Candidates ranked per round of the visibility check (doubled while too few may be seen).
_FIRST_ROUND = 32


def query_words(question: str) -> list[str]:
    """The words of a free-text question that rank: lower-cased, stop words out (unless nothing
    else is left), each once, at most 32. Never an error, whatever the text holds."""
    words = [w for w in _WORD.findall(question.lower()) if w not in _STOP]
    if not words:
        words = _WORD.findall(question.lower())
    return list(dict.fromkeys(words))[:32]


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.index: Bm25Index | None = None
        self.seq = -1


_ENTRIES: dict[tuple[str, int, str], _Entry] = {}
_ENTRIES_LOCK = threading.Lock()


def _conn(db: Any) -> Any:
    return getattr(db, "conn", db)


def _latest(conn: Any, team_id: str) -> int:
    row = conn.execute("select max(seq) from retrieval_changes where team_id = ?", [team_id]).fetchone()
    return int(row[0] or 0)


def _build(conn: Any, team_id: str, seq: int) -> Bm25Index:
    """The index of the workspace's approved pairs (``seq``, the log's last entry, was read first:
    a change made while reading is applied again at the next lookup)."""
    rows = conn.execute("select id, question, answer from candidates where team_id = ? and "
                        "status = 'approved' and stale = 0 order by id", [team_id]).fetchall()
    return Bm25Index([(r[0], f"{r[1]}\n{r[2]}") for r in rows])


def _apply_changes(conn: Any, team_id: str, index: Bm25Index, since: int, latest: int) -> None:
    ids = [r[0] for r in conn.execute(
        "select distinct candidate_id from retrieval_changes where team_id = ? and seq > ? and seq <= ?",
        [team_id, since, latest])]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        now = {r[0]: r[1:] for r in conn.execute(
            f"select id, question, answer, team_id, status, stale from candidates where id in "
            f"({','.join('?' * len(chunk))})", chunk)}
        for cid in chunk:
            row = now.get(cid)
            if row and row[2] == team_id and row[3] == "approved" and not row[4]:
                index.add(cid, f"{row[0]}\n{row[1]}")
            else:
                index.remove(cid)


def _store_key(conn: Any) -> tuple[str, int] | None:
    """The store's file and inode (a file deleted and made again is another store); None for an
    in-memory database."""
    path = next((r[2] for r in conn.execute("pragma database_list") if r[1] == "main"), "")
    if not path:
        return None
    try:
        return path, os.stat(path).st_ino
    except OSError:
        return None


@contextmanager
def _index(db: Any, team_id: str) -> Iterator[Bm25Index]:
    """The workspace's index, brought in step with the store's change log, held for the block."""
    conn = _conn(db)
    key = _store_key(conn)
    latest = _latest(conn, team_id)
    if key is None or conn.in_transaction:
        # Nothing to share it with, or uncommitted changes that a rollback could take back: a
        # private index of what this connection sees.
        entry = _Entry()
    else:
        with _ENTRIES_LOCK:
            entry = _ENTRIES.setdefault((*key, team_id), _Entry())
    with entry.lock:
        # No index yet, or the log went back (the store was restored from a copy): build one.
        stale = entry.index is None or latest < entry.seq
        if not stale and latest > entry.seq:
            changes = conn.execute("select count(*) from retrieval_changes where team_id = ? and seq > ?",
                                   [team_id, entry.seq]).fetchone()[0]
            stale = changes > REBUILD_SHARE * len(entry.index) + 64  # a bulk import: cheaper from scratch
            if not stale:
                _apply_changes(conn, team_id, entry.index, entry.seq, latest)
                stale = entry.index.delta_share > REBUILD_SHARE
        if stale:
            entry.index = _build(conn, team_id, latest)
        entry.seq = latest
        yield entry.index


def warm(db: Any) -> list[str]:
    """Build now the index of every workspace with approved pairs, so that no question waits for it
    (``threadtune bot`` calls this on a background thread as it starts); returns those workspaces."""
    teams = [r[0] for r in _conn(db).execute(
        "select distinct team_id from candidates where status = 'approved' and stale = 0")]
    for team_id in teams:
        with _index(db, team_id):
            pass
    return teams


def top_pairs(db: Any, team_id: str, question: str, k: int = 3, *,
              visible_in: str | None = None) -> list[dict[str, Any]]:
    """The ``k`` approved pairs of ``team_id`` that best match ``question`` (BM25), best first.

    Only pairs that may be seen in ``visible_in``, the channel where the question was asked
    (:mod:`curation.visibility`): a pair from a private channel or a DM answers only there, unless
    an admin shared the channel. ``None`` (no channel: the CLI, evaluation) means pairs that may
    answer anywhere.

    Each is ``{"id", "question", "answer", "bm25"}`` (``bm25``: the BM25 score negated, as FTS5's
    ``bm25()`` gives it: lower is better); the best one also has ``bm25_self``, the score its own
    question gets for it (the most it could score: curation.answer_match uses the ratio). Empty
    when nothing matches. Stale pairs (whose source was deleted or forgotten) are never retrieved.
    """
    words = query_words(question)
    if not words or k < 1:
        return []
    limit = max(_FIRST_ROUND, 4 * k)
    with _index(db, team_id) as index:
        terms = index.query_terms(words)
        while True:
            ranked = index.top(terms, limit)
            seen = _visible(db, [cid for cid, _ in ranked], visible_in)
            pairs = [{"id": cid, "question": seen[cid][0], "answer": seen[cid][1], "bm25": score}
                     for cid, score in ranked if cid in seen][:k]
            if len(pairs) == k or len(ranked) < limit:
                break
            limit *= 4
        if pairs:  # the most the best pair could score: its own question as the query
            own = index.query_terms(query_words(pairs[0]["question"]))
            pairs[0]["bm25_self"] = index.score(pairs[0]["id"], own) if own else 0.0
    return pairs


def _visible(db: Any, ids: list[int], visible_in: str | None) -> dict[int, tuple[str, str]]:
    """``id → (question, answer)`` of those of ``ids`` that may be seen in ``visible_in``."""
    if not ids:
        return {}
    return {r[0]: (r[1], r[2]) for r in _conn(db).execute(
        f"select c.id, c.question, c.answer from candidates c where c.id in ({','.join('?' * len(ids))}) "
        f"and {visible_sql('c')}", [*ids, visible_in])}
