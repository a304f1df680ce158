"""Block Kit, one way: every payload the bot sends is built here, on ``slack_sdk.models``.

Two kinds of text go into a message. Our own (labels, status lines) is written as mrkdwn. Anything a
user or a model wrote goes through :func:`escape` first (``&``, ``<``, ``>``), so that it can never
become ``<!channel>``, ``<@U…>``, ``<!subteam^…>`` or a link that reads one way and goes another.
Text is cut to Slack's limits in one way (:func:`cut`, :func:`split`), never inside an escape, and a
cut says so with "…".

Slack's limits: a text object holds 1 to 3,000 characters, a message at most 50 blocks and about
12,000 characters of block text (``msg_blocks_too_long``), a modal at most 100 blocks, a button label
75, a button value 2,000, a plain-text input 3,000, ``private_metadata`` 3,000, a modal title 24, a
message's ``text`` 40,000 (we keep it far shorter: it is only the notification).
"""

from __future__ import annotations

import re
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

TEXT_LIMIT = 3000
MAX_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MESSAGE_TEXT_BUDGET = 11_000  # block text per message; Slack refuses much over 12,000
BUTTON_LABEL = 75
BUTTON_VALUE = 2000
INPUT_LIMIT = 3000
METADATA_LIMIT = 3000
TITLE_LIMIT = 24
NOTIFICATION_LIMIT = 3000
ELLIPSIS = "…"
EMPTY = "(empty)"

Block = dict[str, Any]
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(text: str | None) -> str:
    """``text`` with Slack's three control characters escaped: nothing in it can mention, link
    or ping."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and "…" (``limit`` in all). An
    escape (``&amp;``, ``&lt;``, ``&gt;``) is never cut in half."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text
    head = _PARTIAL_ENTITY.sub("", text[: limit - len(ELLIPSIS)])
    return head.rstrip() + ELLIPSIS


def visible(text: str | None, placeholder: str = EMPTY) -> str:
    """``text``, or ``placeholder`` when it is empty or whitespace (Slack refuses empty text)."""
    return text if text and text.strip() else placeholder


def split(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Already-escaped ``text`` in pieces of at most ``limit`` characters, cut at a paragraph, line
    or word where one is near, never inside an escape; no piece is empty or whitespace."""
    if limit < 8:
        raise ValueError("limit must be at least 8")
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        at = -1
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at > limit // 2:
                break
        if at <= limit // 2:  # no boundary near: cut hard, but not inside an escape
            partial = _PARTIAL_ENTITY.search(window)
            at = limit - (len(partial.group(0)) if partial else 0)
        piece, rest = rest[:at].rstrip(), rest[at:].lstrip()
        if piece:
            pieces.append(piece)
    if rest:
        pieces.append(rest)
    return pieces


def quote(text: str) -> str:
    """Escaped ``text`` as a mrkdwn block quote."""
    return "\n".join("> " + line for line in escape(text).splitlines() or [""])


def mention(user_id: str) -> str:
    """A mention of a Slack user id we trust (ids from Slack's own payloads, never from text)."""
    return f"<@{user_id}>" if re.fullmatch(r"[UW][A-Z0-9]+", user_id or "") else escape(user_id)


def link(url: str, label: str) -> str:
    """``<url|label>`` with the label escaped and cut; an URL that is not http(s) becomes text."""
    label = cut(escape(visible(label, "link")).replace("|", "/"), 80)
    if not re.fullmatch(r"https?://[^\s<>|]+", url or ""):
        return label
    return f"<{url}|{label}>"


def notification(text: str | None) -> str:
    """A message's ``text`` (shown in notifications), escaped and short."""
    return cut(escape(visible(text)), NOTIFICATION_LIMIT)


# --- blocks --------------------------------------------------------------------------------------

def section(mrkdwn: str) -> Block:
    """A section of mrkdwn we composed (user text in it already escaped), cut to 3,000."""
    return SectionBlock(text=MarkdownTextObject(text=cut(visible(mrkdwn), TEXT_LIMIT))).to_dict()


def context(*mrkdwn: str) -> Block:
    """A context line (up to 10 elements) of composed mrkdwn."""
    elements = [MarkdownTextObject(text=cut(visible(m), TEXT_LIMIT)) for m in mrkdwn][:10]
    return ContextBlock(elements=elements).to_dict()


def confirm(title: str, text: str, yes: str, no: str = "Cancel", *, danger: bool = False) -> ConfirmObject:
    """A confirmation dialog for a button."""
    return ConfirmObject(title=cut(title, 100), text=MarkdownTextObject(text=cut(text, 300)),
                         confirm=cut(yes, 30), deny=cut(no, 30), style="danger" if danger else None)


def button(label: str, action_id: str, value: str, *, style: str | None = None,
           confirm_with: ConfirmObject | None = None) -> ButtonElement:
    """A button. ``value`` must fit 2,000 characters (callers that carry data make it fit)."""
    if len(value) > BUTTON_VALUE:
        raise ValueError(f"button value of {len(value)} characters; Slack allows {BUTTON_VALUE}")
    return ButtonElement(text=PlainTextObject(text=cut(label, BUTTON_LABEL), emoji=True),
                         action_id=action_id, value=value, style=style, confirm=confirm_with)


def actions(*buttons: ButtonElement, block_id: str | None = None) -> Block:
    """A row of buttons."""
    return ActionsBlock(elements=list(buttons), block_id=block_id).to_dict()


def text_input(block_id: str, label: str, *, action_id: str, initial: str = "",
               multiline: bool = False, placeholder: str | None = None, hint: str | None = None,
               min_length: int | None = None, optional: bool = False) -> Block:
    """A plain-text input. ``initial`` must fit 3,000 characters: prefilling a cut text would
    write the cut text back on Save, so callers check :func:`fits_input` first."""
    if len(initial) > INPUT_LIMIT:
        raise ValueError(f"initial value of {len(initial)} characters; Slack allows {INPUT_LIMIT}")
    element = PlainTextInputElement(
        action_id=action_id, multiline=multiline, max_length=INPUT_LIMIT, min_length=min_length,
        initial_value=initial or None,
        placeholder=PlainTextObject(text=cut(placeholder, 150)) if placeholder else None)
    return InputBlock(block_id=block_id, label=PlainTextObject(text=cut(label, 2000)), element=element,
                      hint=PlainTextObject(text=cut(hint, 2000)) if hint else None,
                      optional=optional).to_dict()


def fits_input(text: str | None) -> bool:
    """Whether ``text`` can be edited whole in a plain-text input."""
    return len(text or "") <= INPUT_LIMIT


def modal(callback_id: str, title: str, blocks: list[Block], *, submit: str | None = None,
          close: str = "Cancel", private_metadata: str = "") -> Block:
    """A modal view."""
    if len(private_metadata) > METADATA_LIMIT:
        raise ValueError(f"private_metadata of {len(private_metadata)} characters; Slack allows "
                         f"{METADATA_LIMIT}")
    return View(type="modal", callback_id=callback_id, title=PlainTextObject(text=cut(title, TITLE_LIMIT)),
                submit=PlainTextObject(text=cut(submit, TITLE_LIMIT)) if submit else None,
                close=PlainTextObject(text=cut(close, TITLE_LIMIT)),
                private_metadata=private_metadata or None, blocks=blocks[:MAX_MODAL_BLOCKS]).to_dict()


def sections(escaped: str, room: int, budget: int, note: str) -> list[Block]:
    """Escaped text as at most ``room`` sections with at most ``budget`` characters in all; when it
    does not fit, the last section ends with ``note`` (mrkdwn) to say that it was cut."""
    pieces = split(visible(escaped))
    if len(pieces) <= room and sum(map(len, pieces)) <= budget:
        return [section(p) for p in pieces]
    out: list[str] = []
    used, reserve = 0, len(note) + 1
    for piece in pieces:
        if len(out) >= room - 1 or used + len(piece) + reserve > budget:
            break
        out.append(piece)
        used += len(piece)
    space = min(TEXT_LIMIT, budget - used) - reserve
    head = cut(pieces[len(out)], space) if space >= 2 else ""
    out.append(f"{head}\n{note}" if head.strip() else note)
    return [section(p) for p in out]


def block_text_length(blocks: list[Block]) -> int:
    """Characters of text in ``blocks``, as Slack counts them toward ``msg_blocks_too_long``."""
    total = 0
    stack: list[Any] = list(blocks)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                total += len(node["text"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return total
