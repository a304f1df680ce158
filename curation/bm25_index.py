"""An in-memory BM25 index of one workspace's approved pairs: FTS5's formula, in milliseconds.

FTS5 computes ``bm25()`` for every row that any query word matches; in a store of 100k pairs a
question's words match tens of thousands of rows, and a lookup took 86 ms (p99 141 ms). This index
holds, per workspace, the postings of its approved, non-stale pairs as numpy arrays and scores a
question with one ``bincount`` over the postings of its words.

- **The same tokens as the store's index.** Words are cut as FTS5's ``unicode61`` tokenizer cuts
  them (runs of letters and digits), and each distinct word is turned into tokens by SQLite itself:
  an in-memory FTS5 table with the same ``porter`` tokenizer, read back through ``fts5vocab``
  (:class:`Tokens`). Case folding, diacritics and stemming are therefore SQLite's own.
- **The same score.** FTS5's BM25 (k1 = 1.2, b = 0.75, IDF ``log((N - n + 0.5) / (n + 0.5))``
  floored at 1e-6, question and answer weighted 1 and counted as one document), negated so that
  lower is better, as ``bm25()`` returns it. The statistics are the workspace's approved pairs',
  not the whole table's: one workspace's drafts or another workspace's pairs no longer move its
  ranking.
- **In step with the store.** Triggers (migration m012) log every change to an approved pair in
  ``retrieval_changes``; before each lookup the index reads the log past its last entry and applies
  those changes (an edit, an erasure, a rejection or a stale source takes effect at the next
  lookup, in every process). Changed pairs go to a small delta that is scored in Python; past a
  twentieth of the index it is rebuilt.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter, defaultdict
from typing import Any

import numpy as np

K1, B = 1.2, 0.75
#: Runs of letters and digits: the words FTS5's unicode61 tokenizer cuts (SQLite then tokenizes
#: each one, so a word it would cut further is cut the same way).
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_MAX_CACHE = 500_000


class Tokens:
    """Words to FTS5 ``porter`` tokens, computed by SQLite and cached per distinct word."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute("create virtual table t using fts5(x, tokenize='porter')")
        self._conn.execute("create virtual table v using fts5vocab(t, 'instance')")
        self._cache: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def words(self, text: str) -> list[str]:
        return _WORD.findall(text)

    def of(self, words: list[str]) -> list[str]:
        """The tokens of ``words``, in order."""
        known = self.learn(words)
        return [t for w in words for t in known[w]]

    def learn(self, words: Any) -> dict[str, tuple[str, ...]]:
        """Tokenize the words not seen yet (one SQLite round trip); the tokens of all ``words``."""
        words = set(words)
        cache = self._cache
        known = {w: t for w in words if (t := cache.get(w)) is not None}
        unknown = sorted(words - known.keys())
        if not unknown:
            return known
        with self._lock:
            got: dict[int, list[str]] = defaultdict(list)
            with self._conn:
                self._conn.executemany("insert into t (rowid, x) values (?, ?)", enumerate(unknown, 1))
                for term, doc in self._conn.execute("select term, doc from v order by doc, offset"):
                    got[doc].append(term)
                self._conn.execute("delete from t")
            if len(cache) + len(unknown) > _MAX_CACHE:
                cache.clear()
            for i, w in enumerate(unknown, 1):
                known[w] = cache[w] = tuple(got.get(i, ()))
        return known


TOKENS = Tokens()


class Bm25Index:
    """BM25 over a set of documents (``id → text``) with changes applied in place. Not thread-safe:
    :mod:`curation.retrieval` holds a lock around each use."""

    def __init__(self, docs: list[tuple[int, str]], tokens: Tokens = TOKENS) -> None:
        self.tokens = tokens
        self.term_ids: dict[str, int] = {}
        texts = [tokens.words(text) for _, text in docs]
        known = tokens.learn(w for ws in texts for w in ws)
        self.ids = np.array([i for i, _ in docs], dtype=np.int64)
        self.row_of = {int(i): r for r, i in enumerate(self.ids)}
        docs_a, terms_a = self._occurrences(texts, known)
        n_terms = max(len(self.term_ids), 1)
        self.length = np.bincount(docs_a, minlength=len(docs)).astype(np.float64)
        # One entry per (document, term): its frequency, kept both term-major (for scoring) and
        # document-major (to take a document out of the statistics).
        keys, tf = np.unique(docs_a * n_terms + terms_a, return_counts=True)
        del docs_a, terms_a
        d, t = (keys // n_terms).astype(np.int32), (keys % n_terms).astype(np.int32)
        self.doc_ptr = np.searchsorted(d, np.arange(len(docs) + 1))
        self.doc_terms = t  # document-major: what a removed document takes out of ``df``
        order = np.argsort(t, kind="stable")  # term-major, documents ascending within a term
        self.post_doc, self.post_tf = d[order], np.minimum(tf[order], 65535).astype(np.uint16)
        self.term_ptr = np.searchsorted(t[order], np.arange(n_terms + 1))
        self.n_main_terms = n_terms
        self.df = np.diff(self.term_ptr).astype(np.int64)
        self.alive = np.ones(len(docs), dtype=bool)
        self.n_alive, self.total_len = len(docs), float(self.length.sum())
        # Documents added after the build: id → (term → frequency, length).
        self.delta: dict[int, tuple[dict[int, int], int]] = {}
        self.delta_df: Counter[int] = Counter()

    def _occurrences(self, texts: list[list[str]], known: dict[str, tuple[str, ...]]) -> tuple[Any, Any]:
        """``(document row, term id)`` of every token of ``texts``, as two arrays: each distinct word
        is looked up once, and its tokens (usually one) are spread over its occurrences by numpy."""
        vocab = {w: n for n, w in enumerate(known)}
        toks = [[self._term(t) for t in known[w]] for w in vocab]
        n_tok = np.array([len(t) for t in toks], dtype=np.int64)
        tok_ptr = np.concatenate([[0], np.cumsum(n_tok)])
        tok_ids = np.array([t for ts in toks for t in ts], dtype=np.int64)
        flat = [w for ws in texts for w in ws]
        word = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
        doc_of_word = np.repeat(np.arange(len(texts)), [len(ws) for ws in texts])
        per = n_tok[word]  # tokens each occurrence stands for
        starts = np.repeat(tok_ptr[word], per)
        within = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
        return np.repeat(doc_of_word, per), tok_ids[starts + within]

    def _term(self, token: str) -> int:
        return self.term_ids.setdefault(token, len(self.term_ids))

    def __len__(self) -> int:
        return self.n_alive + len(self.delta)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (the delta and the term dictionary not counted)."""
        return sum(a.nbytes for a in (self.ids, self.length, self.doc_ptr, self.doc_terms, self.post_doc,
                                      self.post_tf, self.term_ptr, self.df, self.alive))

    @property
    def delta_share(self) -> float:
        return len(self.delta) / max(len(self), 1)

    # -- changes ------------------------------------------------------------------------------

    def remove(self, doc_id: int) -> None:
        if doc_id in self.delta:
            freqs, length = self.delta.pop(doc_id)
            self.delta_df.subtract(freqs.keys())
            self.total_len -= length
            return
        row = self.row_of.get(doc_id)
        if row is None or not self.alive[row]:
            return
        self.alive[row] = False
        self.n_alive -= 1
        self.total_len -= self.length[row]
        self.df[self.doc_terms[self.doc_ptr[row]:self.doc_ptr[row + 1]]] -= 1

    def add(self, doc_id: int, text: str) -> None:
        self.remove(doc_id)
        terms = [self._term(t) for t in self.tokens.of(self.tokens.words(text))]
        freqs = dict(Counter(terms))
        self.delta[doc_id] = (freqs, len(terms))
        self.delta_df.update(freqs.keys())
        self.total_len += len(terms)

    # -- scoring ------------------------------------------------------------------------------

    def query_terms(self, words: list[str]) -> list[int]:
        """Term ids of the query's words (a token the index has never seen matches nothing)."""
        return [self.term_ids[t] for t in self.tokens.of(words) if t in self.term_ids]

    def _idf(self, term: int) -> float:
        n = len(self)
        hits = (int(self.df[term]) if term < self.n_main_terms else 0) + self.delta_df.get(term, 0)
        idf = math.log((n - hits + 0.5) / (hits + 0.5))
        return idf if idf > 0 else 1e-6

    def _avgdl(self) -> float:
        return self.total_len / max(len(self), 1)

    def _part(self, tf: Any, length: Any, avgdl: float) -> Any:
        return tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / avgdl))

    def top(self, terms: list[int], limit: int) -> list[tuple[int, float]]:
        """The ``limit`` best ``(id, score)`` for the query terms, best first (scores negated as
        FTS5's: lower is better); only documents that hold at least one term."""
        if not terms or not len(self):
            return []
        avgdl = self._avgdl()
        docs, weights = [], []
        for term in terms:
            if term >= self.n_main_terms:
                continue
            lo, hi = self.term_ptr[term], self.term_ptr[term + 1]
            d = self.post_doc[lo:hi]
            docs.append(d)
            tf = self.post_tf[lo:hi].astype(np.float64)
            weights.append(self._idf(term) * self._part(tf, self.length[d], avgdl))
        found: list[tuple[int, float]] = []
        if docs:
            total = np.bincount(np.concatenate(docs), weights=np.concatenate(weights), minlength=len(self.ids))
            hit = np.flatnonzero((total > 0) & self.alive)
            if len(hit) > limit:
                hit = hit[np.argpartition(-total[hit], limit - 1)[:limit]]
            found = [(int(self.ids[r]), float(total[r])) for r in hit]
        for doc_id, (freqs, length) in self.delta.items():
            score = sum(self._idf(t) * self._part(freqs[t], length, avgdl) for t in terms if t in freqs)
            if score > 0:
                found.append((doc_id, score))
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        return [(doc_id, -score) for doc_id, score in found[:limit]]

    def score(self, doc_id: int, terms: list[int]) -> float:
        """The (negated) score of one document for the query terms; 0.0 when it holds none."""
        if doc_id in self.delta:
            freqs, length = self.delta[doc_id]
        else:
            row = self.row_of.get(doc_id)
            if row is None or not self.alive[row]:
                return 0.0
            freqs = {}
            for t in terms:
                if t < self.n_main_terms:
                    lo, hi = self.term_ptr[t], self.term_ptr[t + 1]
                    at = lo + int(np.searchsorted(self.post_doc[lo:hi], row))
                    if at < hi and self.post_doc[at] == row:
                        freqs[t] = int(self.post_tf[at])
            length = self.length[row]
        avgdl = self._avgdl()
        return -sum(self._idf(t) * self._part(freqs[t], length, avgdl) for t in terms if t in freqs)
