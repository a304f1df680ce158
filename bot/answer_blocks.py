"""Block Kit payloads for answers: pure functions on :mod:`bot.blocks`, no Slack calls.

Everything the model or the asker wrote is escaped; an answer is split into sections and cut, with a
note, to fit one message (50 blocks, about 12,000 characters of block text). The answer's mode
(curation/answer_modes.py) sets its label: the *verified* badge on an approved answer quoted
verbatim, *not verified* on what the model wrote, with the terms no approved text supports, and
*closest approved answer* (no badge) on a pair quoted because nothing the model wrote was supported,
naming the question it was approved for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot import blocks as bk

#: action_ids and the modal's callback_id; bot/answers.py registers listeners for them.
ACTION_UP = "answer_up"
ACTION_DOWN = "answer_down"
ACTION_RETRY = "answer_retry"
ACTION_SAVE_FAQ = "answer_save_faq"
ACTION_ASK_TEAM = "answer_ask_team"
CORRECTION_VIEW = "answer_correction"
CORRECTION_BLOCK = "correction"
CORRECTION_INPUT = "text"

VERIFIED = ":white_check_mark: *Verified answer* — the team's approved answer, word for word"
NOT_VERIFIED = ":warning: *Not verified* — written by the model from the team's approved answers"
CLOSEST = (":mag: *Closest approved answer* — not verified for your question: the team approved it "
           "for “{question}”")
TRUNCATED = "_… (answer truncated: too long for one Slack message)_"
EMPTY_ANSWER = "_(the model returned an empty answer)_"
THINKING = "Thinking…"

Block = dict[str, Any]


def placeholder_blocks(question: str | None = None) -> list[Block]:
    """The reply posted at once, before the model answers."""
    line = ":hourglass_flowing_sand: _Thinking…_"
    if question and question.strip():
        line += f"  (question: {bk.cut(bk.escape(question), 200)})"
    return [bk.context(line)]


def sources_line(sources: Sequence[dict[str, Any]]) -> str | None:
    """``Based on: <link|label>, …`` from ``[{"permalink", "question"}]`` (labels escaped); None
    without links."""
    links = [bk.link(s["permalink"], s.get("question") or f"source {i}")
             for i, s in enumerate(sources, 1) if s.get("permalink")]
    return bk.cut("Based on: " + ", ".join(links), bk.TEXT_LIMIT) if links else None


def answer_blocks(answer_id: int | str, text: str, *, model_version: str,
                  sources: Sequence[dict[str, Any]] | None = None, verified: bool = False,
                  streaming: bool = False, mode: str | None = None,
                  flags: Sequence[str] | None = None, held_back: Sequence[str] | None = None) -> list[Block]:
    """The answer message: its label, the escaped answer in sections, citations, footer and 👍/👎
    buttons (and, on a closest answer, "Ask the team"). ``mode`` is verified, generated, closest or abstain (default: from ``verified``); a
    closest answer is the first of ``sources`` quoted, and its label names that pair's question
    (escaped). ``flags`` are
    the names in a generated answer that no retrieved approved pair holds, ``held_back`` the
    numbers, URLs and commands whose sentences were left out for the same reason. Always one valid
    message: a too long answer is cut and says so."""
    mode = mode or ("verified" if verified else "generated")
    head = [bk.context(VERIFIED)] if mode == "verified" else []
    if mode == "closest":
        quoted = (sources or [{}])[0].get("question") or "another question"
        head = [bk.context(CLOSEST.format(question=bk.cut(bk.escape(bk.visible(quoted)), 300)))]
    tail: list[Block] = []
    if mode == "generated" and not streaming:
        line = NOT_VERIFIED
        if flags:
            line += "; not in the approved answers it used: " + _terms(flags)
        if held_back:
            line += "; left out what no approved answer here supports: " + _terms(held_back)
        tail.append(bk.context(line))
    cites = sources_line(sources or [])
    if cites:
        tail.append(bk.context(cites))
    footer = f"threadtune · model {bk.escape(model_version)}"
    tail.append(bk.context(footer + (" · _writing…_" if streaming else "")))
    if not streaming:
        value = str(answer_id)
        buttons = [bk.button("👍 Helpful", ACTION_UP, value), bk.button("👎 Not right", ACTION_DOWN, value)]
        if mode == "closest":  # quoted for another question: the asker may still want the team's word
            buttons.append(bk.button("🙋 Ask the team", ACTION_ASK_TEAM, value))
        tail.append(bk.actions(*buttons, block_id=f"answer_feedback_{answer_id}"))
    room = bk.MAX_BLOCKS - len(head) - len(tail)
    budget = bk.MESSAGE_TEXT_BUDGET - bk.block_text_length(head + tail)
    body = bk.escape(text) if text and text.strip() else ("…" if streaming else EMPTY_ANSWER)
    return head + bk.sections(body, room, budget, TRUNCATED) + tail


def _terms(terms: Sequence[str]) -> str:
    return ", ".join(f"`{bk.cut(bk.escape(t), 60)}`" for t in list(terms)[:8])


def fallback_text(text: str) -> str:
    """The notification text of an answer."""
    return bk.notification(text or "(empty answer)")


def retry_value(retry: dict[str, Any]) -> str | None:
    """The Retry button's value (JSON), or None when the question does not fit in 2,000 characters
    (the caller then carries a reference to the stored question instead)."""
    value = json.dumps(retry, separators=(",", ":"), ensure_ascii=False)
    return value if len(value) <= bk.BUTTON_VALUE else None


def error_blocks(message: str, retry: dict[str, Any] | None) -> list[Block]:
    """A visible, friendly error (our words, never user text) with a Retry button carrying what is
    needed to ask again; ``retry`` must fit (see :func:`retry_value`)."""
    blocks: list[Block] = [bk.section(f":warning: {message}")]
    if retry is not None:
        value = retry_value(retry)
        if value is None:
            raise ValueError("the retry value does not fit a button: pass a reference to the question")
        blocks.append(bk.actions(bk.button("Retry", ACTION_RETRY, value, style="primary")))
    return blocks


def save_faq_blocks(answer_id: int | str, question: str, answer: str) -> list[Block]:
    """Offered to reviewers after a 👍 on an answer with no approved pair (question and answer
    escaped)."""
    return [
        bk.section(":bulb: This answer was marked helpful and no approved FAQ covers it yet.\n"
                   f"*Q:* {bk.cut(bk.escape(bk.visible(question)), 1200)}\n"
                   f"*A:* {bk.cut(bk.escape(bk.visible(answer)), 1500)}"),
        bk.actions(bk.button("Save as FAQ", ACTION_SAVE_FAQ, str(answer_id), style="primary")),
    ]


def correction_modal(answer_id: int | str, question: str, answer: str, channel: str) -> Block:
    """The 👎 modal asking for the correct answer; submitting it creates a feedback candidate."""
    meta = json.dumps({"answer_id": str(answer_id), "channel": channel})
    return bk.modal(CORRECTION_VIEW, "Correct this answer", [
        bk.section(f"*Question:* {bk.cut(bk.escape(bk.visible(question)), 1200)}"),
        bk.section(f"*Answer given:* {bk.cut(bk.escape(bk.visible(answer)), 1500)}"),
        bk.text_input(CORRECTION_BLOCK, "What is the correct answer?", action_id=CORRECTION_INPUT,
                      multiline=True, min_length=2),
    ], submit="Send to review", private_metadata=meta)
