"""How well an approved pair answers a question: one score in [0, 1]. Pure.

The score is the mean of two views of the same question:

- *question likeness*: rapidfuzz's ``token_set_ratio`` between the question and the pair's question
  (lower-cased), which forgives word order and extra words;
- *coverage*: the share of the question's content words (curation.dedup's framing-word list and
  light stemmer) that the pair's question or answer contains.

BM25 ranks the pairs; this score decides whether the best one is quoted verbatim (see
``curation/answer_modes.py``). Whether to answer at all is decided on the *evidence*: the mean of
this score and the best pair's BM25 score over the score its own question gets for it (so the
ratio is in [0, 1] whatever the size of the store). BM25 weighs a word by its rarity in the store,
so a question sharing one common word with a pair ("What is the *capital* of Australia?") has
little evidence, while a casual rephrasing that shares the pair's rare words has much, however
differently it is worded. Thresholds and the scale are calibrated on
held-out rephrasings (``bench/calibrate.py``); reranking BM25's top candidates by the match score
lowered the first-hit rate on them (``bench/retrieval.py``), so it does not rank.
"""

from __future__ import annotations

from typing import Any

from rapidfuzz import fuzz

from curation.dedup import content_stems

#: Characters of an answer read for coverage (answers can be long; the start says what it is about).
ANSWER_CHARS = 2000


def question_likeness(question: str, pair_question: str) -> float:
    """``token_set_ratio`` of the two questions, lower-cased, in [0, 1]."""
    a, b = question.lower().strip(" ?!."), pair_question.lower().strip(" ?!.")
    if not a or not b:
        return 0.0
    return fuzz.token_set_ratio(a, b) / 100


def coverage(question: str, pair: dict[str, Any]) -> float:
    """Share of the question's content stems found in the pair's question or answer."""
    asked = content_stems(question)
    if not asked:
        return 0.0
    known = content_stems(pair["question"]) | content_stems(pair["answer"][:ANSWER_CHARS])
    return len(asked & known) / len(asked)


def match_score(question: str, pair: dict[str, Any]) -> float:
    """How well ``pair`` (``{"question", "answer"}``) answers ``question``, in [0, 1]."""
    return round((question_likeness(question, pair["question"]) + coverage(question, pair)) / 2, 4)


def evidence(question: str, pair: dict[str, Any]) -> float:
    """How much the store knows about ``question``, in [0, 1]: the mean of :func:`match_score` and
    the pair's BM25 score for the question (``pair["bm25"]``, FTS5's: lower is better) over its score
    for its own question (``pair["bm25_self"]``, see curation.retrieval), capped at 1."""
    got, best = -float(pair.get("bm25") or 0.0), -float(pair.get("bm25_self") or 0.0)
    lexical = min(1.0, max(0.0, got / best)) if best > 0 else 0.0
    return round((match_score(question, pair) + lexical) / 2, 4)


def signals(question: str, pairs: list[dict[str, Any]]) -> tuple[float, float]:
    """``(match score, evidence)`` of the best of ``pairs`` (0, 0 when nothing was retrieved)."""
    if not pairs:
        return 0.0, 0.0
    return match_score(question, pairs[0]), evidence(question, pairs[0])
