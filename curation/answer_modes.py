"""The answer pipeline's decisions, pure: for a question and its retrieved pairs, answer with an
approved pair verbatim (*verified*), let the model write an answer (*generated*, not verified), or
say that nobody knows yet and ask the team (*abstain*); then flag what a generated answer states
that no approved text supports; when it states a number, URL or command that they lack, quote the
best retrieved approved pair verbatim instead, as the *closest* approved answer (not verified: it was
approved for another wording, maybe another question, and says which).

The bot, `threadtune ask`, the demo and the eval's ``bot`` system all decide here, with the same
thresholds (settings ``answer_verify_score`` and ``answer_abstain_score``, calibrated by
``bench/calibrate.py``).

Two signals (``curation/answer_match.py``): how well the best retrieved pair matches the question
decides whether it is quoted verbatim; the *evidence* (that match and the pair's BM25 score) decides
whether to answer at all. A question without evidence is not sent to the model: a 135M model
answering from its weights alone states wrong facts. A generated answer is then checked against the
pairs retrieved for it (:func:`check_generated`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from curation.answer_match import signals
from curation.checks import grounded_terms, hard_terms

VERIFIED = "verified"
GENERATED = "generated"
CLOSEST = "closest"
ABSTAIN = "abstain"
MODES = (VERIFIED, GENERATED, CLOSEST, ABSTAIN)

#: Calibrated defaults (bench/calibrate.py on tests/training/data/faq-calibration.jsonl).
VERIFY_SCORE = 0.60
ABSTAIN_SCORE = 0.42


@dataclass(frozen=True)
class Thresholds:
    """Match scores at or above ``verify`` answer verbatim; evidence below ``abstain`` abstains."""

    verify: float = VERIFY_SCORE
    abstain: float = ABSTAIN_SCORE

    def __post_init__(self) -> None:
        if not (0.0 <= self.abstain <= self.verify <= 1.0):
            raise ValueError(f"answer thresholds must satisfy 0 ≤ abstain ({self.abstain}) ≤ verify "
                             f"({self.verify}) ≤ 1")


@dataclass(frozen=True)
class Decision:
    """What to do with a question: the mode, the best pair's match score, the pair when verified,
    and the evidence that the store can answer it."""

    mode: str
    score: float
    pair: dict[str, Any] | None = None
    evidence: float = 0.0

    @property
    def needs_model(self) -> bool:
        """Only generated answers call the model; verified and abstained ones are instant."""
        return self.mode == GENERATED


def decide(question: str, pairs: list[dict[str, Any]], thresholds: Thresholds) -> Decision:
    """The mode for ``question`` given the retrieved ``pairs`` (best first). Nothing retrieved
    scores 0: it abstains unless the abstain threshold is 0 (the model always answers)."""
    score, known = signals(question, pairs)
    if pairs and score >= thresholds.verify:
        return Decision(VERIFIED, score, pairs[0], known)
    if known < thresholds.abstain:
        return Decision(ABSTAIN, score, evidence=known)
    return Decision(GENERATED, score, evidence=known)


_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).lower()


def supported(term: str, text: str) -> bool:
    """Whether ``term`` occurs in ``text`` (case-insensitive; a number not inside a longer one)."""
    t, src = _norm(term).strip().rstrip("()"), _norm(text)
    if not t:
        return True
    if re.fullmatch(r"[\d.,:]+", t):
        return re.search(rf"(?<![\d]){re.escape(t)}(?![\d])", src) is not None
    return t in src


def unsupported_terms(answer: str, sources: list[str]) -> list[str]:
    """Numbers, URLs, commands and names in ``answer`` (curation.checks' grounding terms) that
    appear in none of ``sources``, in order of appearance."""
    return [t for t in grounded_terms(answer) if not any(supported(t, s) for s in sources)]


#: A fenced code block (also one the model left open) is one unit; prose splits after a sentence's
#: end (not after a list number or a version, "1." or "3.9.") and at line breaks.
_FENCED = re.compile(r"(```.*?(?:```|\Z))", re.S)
_BREAK = re.compile(r"(?:(?<=[^\W\d_][.!?])|(?<=[)\]\"'`][.!?]))\s+|\n+")


def units(text: str) -> list[tuple[str, str]]:
    """``text`` as ``(sentence or code block, the whitespace after it)``; joined, they are ``text``."""
    out: list[tuple[str, str]] = []
    for part in _FENCED.split(text):
        if part.startswith("```"):
            out.append((part, ""))
            continue
        pos = 0
        for m in _BREAK.finditer(part):
            out.append((part[pos:m.start()], m.group(0)))
            pos = m.end()
        if part[pos:]:
            out.append((part[pos:], ""))
    return out


def sources_of(question: str, pairs: list[dict[str, Any]]) -> list[str]:
    """What a generated answer may draw on: the question and the retrieved pairs."""
    return [question] + [f"{p['question']}\n{p['answer']}" for p in pairs]


@dataclass(frozen=True)
class Checked:
    """A generated answer after the grounding check: ``text`` without the sentences (and code
    blocks) stating a number, URL or command found in neither the question nor the retrieved pairs,
    those facts (``held_back``), and the names left in ``text`` that the same sources lack
    (``flags``: shown, not removed: a model may rephrase a name). ``closest`` is the best retrieved
    pair, quoted instead when any fact was held back."""

    text: str
    held_back: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    closest: dict[str, Any] | None = None

    @property
    def mode(self) -> str:
        """Generated when nothing was held back; otherwise the closest approved pair quoted
        verbatim, or, with no pair to quote, what is left (abstain when nothing is).

        The model was asked because the evidence that the store answers the question passed the
        abstain threshold; a figure it states that the pairs it was given lack means it garbled
        them (the demo's tuned model wrote "200 EUR" next to the pair that says "250 EUR"), and
        the sentences left are mostly framing without the fact asked for ("Book it in Ledger").
        On the acceptance rephrasings the best pair scored token F1 0.54 where the rest of such
        answers scored 0.11. The pair states no wrong figure, and the reply says which question it
        was approved for, so the asker can tell whether it answers theirs."""
        if not self.held_back:
            return GENERATED
        if self.closest is not None:
            return CLOSEST
        return GENERATED if self.text else ABSTAIN


def check_generated(text: str, question: str, pairs: list[dict[str, Any]]) -> Checked:
    """Ground a generated answer in the pairs retrieved for *this* question (not in any approved
    pair: a figure from another topic is no support), dropping what they do not support. The best
    of ``pairs`` is kept as the closest approved answer (see :attr:`Checked.mode`)."""
    sources = sources_of(question, pairs)
    kept: list[list[str]] = []
    held: list[str] = []
    for unit, sep in units(text):
        if not unit.strip() and kept:
            kept[-1][1] = max(kept[-1][1], sep, key=lambda gap: gap.count("\n"))
            continue
        missing = [t for t in hard_terms(unit) if not any(supported(t, s) for s in sources)]
        if not missing:
            kept.append([unit, sep])
            continue
        held.extend(t for t in missing if t not in held)
        if kept:  # a line break after a dropped sentence still ends the line before it
            kept[-1][1] = max(kept[-1][1], sep, key=lambda gap: gap.count("\n"))
    left = "".join(unit + sep for unit, sep in kept).strip()
    return Checked(left, held, unsupported_terms(left, sources), pairs[0] if pairs else None)


def held_back_note(held_back: list[str]) -> str:
    """What the reply says about the sentences it left out (empty when none)."""
    if not held_back:
        return ""
    shown = ", ".join(held_back[:6]) + (" …" if len(held_back) > 6 else "")
    return f"left out what the approved answers do not support: {shown}"


#: What the user reads when the bot abstains.
ABSTAIN_TEXT = ("I don't know this one yet: no answer the team approved matches your question, and I "
                "would rather not guess.")


def closest_question(pair: dict[str, Any]) -> str:
    """The question a quoted closest pair was approved for, whitespace collapsed, at most 200
    characters."""
    asked = _SPACE.sub(" ", pair.get("question") or "").strip()
    return asked if len(asked) <= 200 else asked[:199] + "…"


def closest_label(pair: dict[str, Any]) -> str:
    """What introduces a quoted closest pair: not verified for this question, and which question
    the team approved it for."""
    return ("Closest approved answer, not verified for your question: the team approved it for "
            f"“{closest_question(pair)}”")


def settle(decision: Decision, checked: Checked) -> Decision:
    """The final decision for a generated answer after the grounding check: still generated, the
    closest approved pair (``pair``) quoted, or abstain."""
    mode = checked.mode
    return Decision(mode, decision.score, checked.closest if mode == CLOSEST else None, decision.evidence)


def answer_text(decision: Decision, generated: str = "") -> str:
    """The reply's main text: the approved answer verbatim (verified or the closest), the model's
    text, or the abstention."""
    if decision.mode in (VERIFIED, CLOSEST) and decision.pair is not None:
        return decision.pair["answer"]
    if decision.mode == ABSTAIN:
        return ABSTAIN_TEXT
    return generated.strip()
