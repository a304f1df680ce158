"""A candidate from a support thread without any LLM, so curation works with a weak model too.

The question is the root message; the answer is the reply marked answered, or else the best reply
(by someone other than the asker, long enough, with code, links or reactions). An LLM may then
rewrite the pair into a standalone FAQ entry; the rewrite is kept only if it passes the checks.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from curation import checks
from curation.errors import CurationError
from curation.extract import LLM, REWRITE_PROMPT, load_prompt, rewrite_pair
from curation.transcript import Transcript, Turn

log = logging.getLogger(__name__)

DETERMINISTIC_VERSION = "deterministic:v1"
_THANKS = re.compile(r"^\W*(thanks?|thank you|thx|ty|cheers|great|ok(ay)?|nice|cool|\+1)\b", re.I)


@dataclass(frozen=True)
class Draft:
    """A question/answer pair drawn from a thread, with where it came from."""

    question: str
    answer: str
    source_ts: tuple[str, ...]  # root ts, then the answer's ts
    method: str  # answered | best_reply, then "+rewrite" when the rewrite was kept
    prompt_version: str
    scores: dict[str, checks.Check] | None = None


_SENTENCE = re.compile(r"(?<=[.?!])\s+|\n+")


def question_of(root: str, limit: int = checks.QUESTION_CHARS[1]) -> str:
    """The question of a root message: all of it when short, else its longest question sentence
    (or its opening) within ``limit`` characters, so that a long post still yields a pair."""
    root = root.strip()
    if len(root) <= limit:
        return root
    parts = [p.strip() for p in _SENTENCE.split(root) if p and p.strip() and "```" not in p]
    asks = [p for p in parts if p.endswith("?") and len(p) <= limit]
    if asks:
        return max(asks, key=len)
    opening = ""
    for p in parts:
        if len(opening) + len(p) + 1 > limit:
            break
        opening = f"{opening} {p}".strip()
    return opening or root[: limit - 1].rsplit(" ", 1)[0] + "…"


def reply_score(turn: Turn, position: int) -> float:
    """How likely a reply is to be the answer: length, code, links; thanks-notes score low."""
    text = turn.text.strip()
    if _THANKS.match(text) and len(text) < 80:
        return 0.0
    score = min(len(text), 600) / 600
    score += 0.5 if "```" in text or "`" in text else 0.0
    score += 0.3 if "http" in text else 0.0
    score -= 0.02 * position  # earlier replies usually answer; later ones drift
    return score


def best_answer(transcript: Transcript) -> tuple[Turn, str] | None:
    """The answered reply, else the best-scoring reply by someone other than the asker."""
    root = transcript.root
    if root is None:
        return None
    if transcript.answered is not None:
        return transcript.answered, "answered"
    scored = [
        (reply_score(t, i), t) for i, t in enumerate(transcript.replies)
        if t.user_id != root.user_id and len(t.text.strip()) >= 10
    ]
    scored = [(s, t) for s, t in scored if s > 0.05]
    if not scored:
        return None
    return max(scored, key=lambda st: st[0])[1], "best_reply"


def draft(transcript: Transcript) -> Draft | None:
    """The deterministic pair of a thread, or ``None`` when nobody else replied usefully."""
    found = best_answer(transcript)
    if found is None or transcript.root is None:
        return None
    answer, method = found
    return Draft(
        question=question_of(transcript.root.text),
        answer=answer.text.strip(),
        source_ts=(transcript.root.ts, answer.ts),
        method=method,
        prompt_version=DETERMINISTIC_VERSION,
    )


def rewritten(base: Draft, transcript_text: str, llm: LLM | None) -> Draft:
    """``base`` rewritten by ``llm`` when the rewrite passes every check, else ``base`` itself."""
    if llm is None:
        return base
    try:
        pair = rewrite_pair(llm, transcript_text, base.question, base.answer)
    except CurationError as err:
        log.info("rewrite failed, keeping the deterministic pair: %s", err)
        return base
    prompt = load_prompt(REWRITE_PROMPT)
    scores = checks.pair_checks(pair.question, pair.answer, source=transcript_text,
                                prompt=prompt.system)
    ok, reason = checks.verdict(scores)
    if not ok:
        log.info("rewrite rejected, keeping the deterministic pair: %s", reason)
        return base
    return Draft(pair.question, pair.answer, base.source_ts, base.method + "+rewrite",
                 prompt.version, scores)
