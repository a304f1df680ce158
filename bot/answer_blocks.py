"""Block Kit payloads for answers: pure functions, no Slack calls.

Slack's limits that shape them: a section's text holds at most 3000 characters, a message at most
50 blocks, a button value 2000 characters, a plain-text label 75.
"""

from __future__ import annotations

import json
from typing import Any

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
FALLBACK_LIMIT = 3900  # the notification text; Slack truncates ``text`` beyond 40k, keep it short
TRUNCATED = "\n_… (answer truncated: too long for one Slack message)_"

#: action_ids and the modal's callback_id; bot/answers.py registers listeners for them.
ACTION_UP = "answer_up"
ACTION_DOWN = "answer_down"
ACTION_RETRY = "answer_retry"
ACTION_SAVE_FAQ = "answer_save_faq"
CORRECTION_VIEW = "answer_correction"
CORRECTION_BLOCK = "correction"
CORRECTION_INPUT = "text"

Block = dict[str, Any]


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters, preferring paragraph, line and
    word boundaries; nothing is lost (joining the pieces gives back the text, up to whitespace at
    the cuts)."""
    if limit < 1:
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at > limit // 2:
                cut = at
                break
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces or [""]


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_LIMIT]}]}


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {"type": "button", "text": {"type": "plain_text", "text": text[:75], "emoji": True},
                     "action_id": action_id, "value": value[:2000]}
    if style:
        button["style"] = style
    return button


def placeholder_blocks(question: str | None = None) -> list[Block]:
    """The reply posted at once, before the model answers."""
    line = ":hourglass_flowing_sand: _Thinking…_"
    if question:
        line = f"{line}  (question: {question[:200]})"
    return [_context(line)]


def sources_line(sources: list[dict[str, Any]]) -> str | None:
    """``Based on: <link|1>, <link|2>`` from ``[{"permalink", "question"}]``; None without links."""
    links = []
    for i, s in enumerate(sources, 1):
        link = s.get("permalink")
        if link:
            label = (s.get("question") or f"source {i}").replace("|", "/").replace(">", "")[:80]
            links.append(f"<{link}|{label}>")
    return "Based on: " + ", ".join(links) if links else None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def answer_blocks(answer_id: int | str, text: str, *, model_version: str,
                  sources: list[dict[str, Any]] | None = None, verified: bool = False,
                  streaming: bool = False, mode: str | None = None,
                  flags: list[str] | None = None) -> list[Block]:
    """The answer message: badge, text split into sections, citations, footer, 👍/👎 buttons.

    ``mode`` (curation/answer_modes.py) sets the label: the *verified* badge only on an approved
    answer quoted verbatim, *not verified* on what the model wrote, with the terms no approved text
    supports (``flags``) listed. Never more than 50 blocks: an answer too long for that is cut.
    """
    mode = mode or ("verified" if verified else "generated")
    head: list[Block] = []
    if mode == "verified":
        head.append(_context(":white_check_mark: *Verified answer* — the team's approved answer, word for word"))
    tail: list[Block] = []
    if mode == "generated" and not streaming:
        line = ":warning: *Not verified* — written by the model from the team's approved answers"
        if flags:
            line += "; not in any approved answer: " + ", ".join(f"`{_escape(f)[:60]}`" for f in flags[:8])
        tail.append(_context(line))
    cites = sources_line(sources or [])
    if cites:
        tail.append(_context(cites))
    footer = f"threadtune · model {model_version}"
    if streaming:
        footer += " · _writing…_"
    tail.append(_context(footer))
    if not streaming:
        value = str(answer_id)
        tail.append({"type": "actions", "block_id": f"answer_feedback_{answer_id}", "elements": [
            _button("👍 Helpful", ACTION_UP, value),
            _button("👎 Not right", ACTION_DOWN, value),
        ]})
    room = MAX_BLOCKS - len(head) - len(tail)
    pieces = split_text(text or "_(the model returned an empty answer)_")
    if len(pieces) > room:
        pieces = pieces[:room]
        last = pieces[-1]
        pieces[-1] = last[: SECTION_LIMIT - len(TRUNCATED)] + TRUNCATED
    return head + [_section(p) for p in pieces] + tail


def fallback_text(text: str) -> str:
    """The notification text of a message with blocks."""
    text = text or "(empty answer)"
    return text if len(text) <= FALLBACK_LIMIT else text[: FALLBACK_LIMIT - 1] + "…"


def error_blocks(message: str, retry: dict[str, Any] | None) -> list[Block]:
    """A visible, friendly error with a Retry button carrying what is needed to ask again."""
    blocks: list[Block] = [_section(f":warning: {message}"[:SECTION_LIMIT])]
    if retry is not None:
        value = json.dumps(retry, separators=(",", ":"))
        if len(value) > 2000:  # a very long question: keep the button, cut the question
            retry = {**retry, "question": str(retry.get("question", ""))[:1500]}
            value = json.dumps(retry, separators=(",", ":"))[:2000]
        blocks.append({"type": "actions", "elements": [_button("Retry", ACTION_RETRY, value, "primary")]})
    return blocks


def save_faq_blocks(answer_id: int | str, question: str, answer: str) -> list[Block]:
    """Offered to reviewers after a 👍 on an answer with no approved pair."""
    q = question[:1200]
    a = answer[:1500]
    return [
        _section(f":bulb: This answer was marked helpful and no approved FAQ covers it yet.\n"
                 f"*Q:* {q}\n*A:* {a}"),
        {"type": "actions", "elements": [_button("Save as FAQ", ACTION_SAVE_FAQ, str(answer_id), "primary")]},
    ]


def correction_modal(answer_id: int | str, question: str, answer: str, channel: str) -> Block:
    """The 👎 modal asking for the correct answer; submitting it creates a feedback candidate."""
    meta = json.dumps({"answer_id": str(answer_id), "channel": channel})
    return {
        "type": "modal",
        "callback_id": CORRECTION_VIEW,
        "private_metadata": meta,
        "title": {"type": "plain_text", "text": "Correct this answer"},
        "submit": {"type": "plain_text", "text": "Send to review"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(f"*Question:* {question[:1200]}"),
            _section(f"*Answer given:* {answer[:1500]}"),
            {"type": "input", "block_id": CORRECTION_BLOCK,
             "label": {"type": "plain_text", "text": "What is the correct answer?"},
             "element": {"type": "plain_text_input", "action_id": CORRECTION_INPUT, "multiline": True,
                         "min_length": 2, "max_length": 3000}},
        ],
    }
