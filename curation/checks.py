"""Quality checks on a question/answer pair. Each is a pure function returning a :class:`Check`.

A candidate that fails any check is auto-rejected, with the reasons shown to reviewers. The scores
are stored on the candidate as ``{name: {score, passed, reason}}``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

QUESTION_CHARS = (10, 400)
#: 3000 is also the most a Slack modal input holds, so every answer can be edited in Slack.
ANSWER_CHARS = (10, 3000)


@dataclass(frozen=True)
class Check:
    """The outcome of one check: a score in [0, 1], whether it passed, and why."""

    score: float
    passed: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form stored in ``candidates.scores``."""
        return {"score": self.score, "passed": self.passed, "reason": self.reason}


# --- grounding -------------------------------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>|)\]`'\"]+")
_FENCE = re.compile(r"```(?:[A-Za-z0-9_+-]*\n)?(.*?)```", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]{1,200})`")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*(?![\w])")
_IDENT = re.compile(
    r"\b[A-Za-z_]\w*(?:(?:\.|::)[A-Za-z_]\w*)+(?:\(\))?|\b[a-z]+_[a-z_]\w*\b|\b[A-Z][a-z]+[A-Z]\w*\b"
    r"|(?<![\w-])--[a-z][\w-]+"
)
_CAPITALIZED = re.compile(r"(?<=[a-z,;] )[A-Z][A-Za-z0-9+#]{2,}\b")
_LIST_MARKER = re.compile(r"^\s*\d+[.)]\s", re.M)
_COMMON_CAPS = frozenset(
    "The This That These Those There Then Also However Note Yes No You Your It If In On For To And "
    "But Or Use Using See Try When What Why How Where Which Who Slack Thanks Please".split()
)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(text)).lower()


def _code_and_urls(answer: str) -> tuple[list[str], str]:
    """Code lines, inline code and URLs of ``answer`` (list markers dropped), and the prose left."""
    text = _LIST_MARKER.sub("", answer)
    terms: list[str] = []
    # Code first and verbatim (a URL inside code stays part of its line), then URLs in the prose.
    for block in _FENCE.findall(text):
        terms.extend(line.strip() for line in block.splitlines() if line.strip())
    text = _FENCE.sub(" ", text)
    terms.extend(code.strip() for code in _INLINE_CODE.findall(text) if code.strip())
    text = _INLINE_CODE.sub(" ", text)
    for match in _URL.finditer(text):
        terms.append(match.group(0).rstrip(".,;:!?"))
    return terms, _URL.sub(" ", text)


def _unique(terms: list[str]) -> list[str]:
    return list(dict.fromkeys(terms))


def grounded_terms(answer: str) -> list[str]:
    """Numbers, URLs, commands, identifiers and names in ``answer`` that the source must contain."""
    terms, text = _code_and_urls(answer)
    terms.extend(_NUMBER.findall(text))
    terms.extend(m.group(0) for m in _IDENT.finditer(text))
    terms.extend(w for w in _CAPITALIZED.findall(text) if w not in _COMMON_CAPS)
    return _unique(terms)


#: Any run of digits that starts a token: "30", "2nd", "1.1.3", "6-63" gives 6 and 63.
_ANY_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:/]\d+)*")


def hard_terms(answer: str) -> list[str]:
    """The facts a wrong answer gets wrong: code and commands, URLs and numbers (also those glued
    to a word, "30days", "2nd"), in order of appearance. A subset of what grounding checks, without
    names, which a model may rephrase."""
    terms, text = _code_and_urls(answer)
    terms.extend(_ANY_NUMBER.findall(text))
    return _unique(terms)


def _contains(source: str, term: str) -> bool:
    t = _norm(term).strip()
    if not t:
        return True
    if re.fullmatch(r"[\d.,:]+", t):  # a number must not match inside a longer number
        return re.search(rf"(?<![\d]){re.escape(t)}(?![\d])", source) is not None
    return t in source or t.rstrip("()") in source


def grounding(answer: str, source: str) -> Check:
    """Numbers, URLs, commands and names in the answer must appear in the source text."""
    terms = grounded_terms(answer)
    if not terms:
        return Check(1.0, True, "no specific terms to verify")
    src = _norm(source)
    missing = [t for t in terms if not _contains(src, t)]
    score = round(1 - len(missing) / len(terms), 3)
    if missing:
        shown = ", ".join(f"`{t[:40]}`" for t in missing[:3]) + (" …" if len(missing) > 3 else "")
        return Check(score, False, f"not in the source: {shown}")
    return Check(score, True, f"all {len(terms)} specific terms appear in the source")


# --- degeneration ----------------------------------------------------------------------------

_CHAR_LOOP = re.compile(r"(\w[^\s]{2,29}?)\1{5,}|(\b\w+\b)(?:\W+\2\b){7,}")
_DANGLING = re.compile(r"(?:[,:;(\[{]|\b(?:and|or|the|a|an|to|of|with|for|in|is|that|then|but))\s*$", re.I)


def degeneration(text: str) -> Check:
    """Repetition loops and truncated text (an unclosed code fence, a dangling last word)."""
    stripped = (text or "").strip()
    if not stripped:
        return Check(0.0, False, "empty")
    if _CHAR_LOOP.search(stripped):
        return Check(0.0, False, "repetition loop")
    words = stripped.lower().split()
    if len(words) >= 12:
        grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
        distinct = len(set(grams)) / len(grams)
        if distinct < 0.5:
            return Check(round(distinct, 3), False, f"repetition loop ({distinct:.0%} distinct 3-grams)")
        lines = [ln.strip() for ln in stripped.splitlines() if ln.strip()]
        if len(lines) >= 4 and len(set(lines)) / len(lines) < 0.5:
            return Check(0.3, False, "the same lines repeat")
    if stripped.count("```") % 2:
        return Check(0.2, False, "truncated (unclosed code block)")
    if _DANGLING.search(stripped):
        return Check(0.5, False, "truncated (ends mid-sentence)")
    return Check(1.0, True, "no loops or truncation")


# --- length ----------------------------------------------------------------------------------


def length(question: str, answer: str, *, question_chars: tuple[int, int] = QUESTION_CHARS,
           answer_chars: tuple[int, int] = ANSWER_CHARS) -> Check:
    """Question and answer lengths within bounds (in characters)."""
    q, a = len((question or "").strip()), len((answer or "").strip())
    problems = []
    if q < question_chars[0]:
        problems.append(f"question too short ({q} < {question_chars[0]} chars)")
    elif q > question_chars[1]:
        problems.append(f"question too long ({q} > {question_chars[1]} chars)")
    if a < answer_chars[0]:
        problems.append(f"answer too short ({a} < {answer_chars[0]} chars)")
    elif a > answer_chars[1]:
        problems.append(f"answer too long ({a} > {answer_chars[1]} chars)")
    if problems:
        return Check(0.0, False, "; ".join(problems))
    return Check(1.0, True, f"question {q} chars, answer {a} chars")


# --- prompt leak -----------------------------------------------------------------------------


def prompt_leak(text: str, prompt: str, *, window: int = 8) -> Check:
    """The pair must not repeat the extraction prompt (a sign that injected text took over)."""
    pw = _norm(prompt).split()
    if len(pw) < window:
        return Check(1.0, True, "prompt too short to leak")
    grams = {" ".join(pw[i:i + window]) for i in range(len(pw) - window + 1)}
    tw = _norm(text).split()
    hits = sum(" ".join(tw[i:i + window]) in grams for i in range(max(0, len(tw) - window + 1)))
    if hits:
        return Check(0.0, False, f"repeats the extraction prompt ({hits} passages)")
    return Check(1.0, True, "does not repeat the prompt")


# --- verdict ---------------------------------------------------------------------------------


def pair_checks(question: str, answer: str, *, source: str | None = None,
                prompt: str | None = None) -> dict[str, Check]:
    """Every check that applies: length and degeneration always, grounding with a source, the
    prompt-leak check with a prompt."""
    checks = {
        "length": length(question, answer),
        "degeneration": _worst(degeneration(question), degeneration(answer), ("question", "answer")),
    }
    if source is not None:
        checks["grounding"] = grounding(answer, source)
    if prompt is not None:
        checks["prompt_leak"] = prompt_leak(question + "\n" + answer, prompt)
    return checks


def _worst(q: Check, a: Check, names: tuple[str, str]) -> Check:
    if q.passed and a.passed:
        return Check(min(q.score, a.score), True, a.reason)
    name, check = (names[0], q) if not q.passed else (names[1], a)
    return Check(min(q.score, a.score), False, f"{name}: {check.reason}")


def verdict(scores: dict[str, Any]) -> tuple[bool, str]:
    """``(passed, reason)`` over stored scores (``{name: Check | {score, passed, reason}}``)."""
    failed = []
    for name, value in scores.items():
        check = value.as_dict() if isinstance(value, Check) else value
        if isinstance(check, dict) and check.get("passed") is False:
            failed.append(f"{name}: {check.get('reason', 'failed')}")
    return (not failed, "; ".join(failed))
