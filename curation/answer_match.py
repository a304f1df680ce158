"""How well an approved pair answers a question: one score in [0, 1]. Pure.

The score is the mean of two views of the same question:

- *question likeness*: rapidfuzz's ``token_set_ratio`` between the question and the pair's question
  (lower-cased), which forgives word order and extra words;
- *coverage*: the share of the question's content words (curation.dedup's framing-word list and
  light stemmer) that the pair's question or answer contains.

BM25 ranks the pairs; this score decides what to do with the best one (see
``curation/answer_modes.py``). Its thresholds are calibrated on held-out rephrasings
(``bench/calibrate.py``), and reranking BM25's top candidates by it lowered the first-hit rate on
them (``bench/retrieval.py``), so it does not rank.
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
