"""Block Kit payloads for review posts and modals: pure functions on :mod:`bot.blocks`.

Pair text, reasons and names are escaped; the Edit modal prefills only what it can hold whole (a
field longer than Slack's 3,000-character input is shown, not prefilled, so that Save never writes a
cut text back).
"""

from __future__ import annotations

import json
from typing import Any

from bot import blocks as bk
from curation.ids import parse_id

ACTION_APPROVE = "review_approve"
ACTION_EDIT = "review_edit"
ACTION_REJECT = "review_reject"
VIEW_EDIT = "review_edit_view"
VIEW_REJECT = "review_reject_view"
BLOCK_QUESTION, BLOCK_ANSWER, BLOCK_REASON = "question", "answer", "reason"
INPUT = "value"

_STATUS = {
    "pending": ":hourglass_flowing_sand: Pending review",
    "approved": ":white_check_mark: Approved",
    "rejected": ":x: Rejected",
    "auto_rejected": ":warning: Auto-rejected by the checks",
    "variant": ":twisted_rightwards_arrows: Variant",
}

Block = dict[str, Any]


def _clip(text: str, limit: int) -> str:
    return bk.cut(text or "", limit)


_escape = bk.escape


def _quote(text: str) -> str:
    return bk.quote(bk.visible(text))


def status_line(c: dict[str, Any], quorum: int = 1) -> str:
    """The status shown on a post: status, approvals toward the quorum, who decided."""
    line = _STATUS.get(c["status"], c["status"])
    approvals = c.get("approvals") or []
    if c["status"] == "pending" and quorum > 1:
        line += f" ({len(approvals)}/{quorum} approvals)"
    if c["status"] == "approved" and approvals:
        line += " by " + ", ".join(bk.mention(u) for u in approvals)
    if c["status"] in ("rejected", "auto_rejected") and c.get("reject_reason"):
        line += f": {_escape(c['reject_reason'])}"
    if c.get("stale"):
        line += f"\n:wastebasket: *Stale:* {_escape(c.get('stale_reason') or 'its source was deleted')}"
    return _clip(line, 2000)


def score_line(c: dict[str, Any]) -> str:
    """Scores and the scrub count, one compact line."""
    parts = []
    for name, sc in (c.get("scores") or {}).items():
        if not isinstance(sc, dict) or name in ("pii", "method"):
            continue
        mark = "✓" if sc.get("passed") else "✗"
        parts.append(f"{_escape(name)} {mark} {float(sc.get('score', 0)):.2f}")
    parts.append(f"PII scrubbed: {int(c.get('scrub_count') or 0)}")
    return _clip(" · ".join(parts), 2000)


def source_line(c: dict[str, Any]) -> str:
    """Links to the sources (permalinks where known) and the origin and prompt version."""
    links = []
    for i, s in enumerate(c.get("sources") or [], start=1):
        if s.get("permalink"):
            links.append(bk.link(s["permalink"], f"source {i}"))
        elif s.get("document_id") is not None:
            links.append(f"document {_escape(str(s['document_id']))}")
        elif s.get("channel_id"):
            links.append(f"<#{_escape(s['channel_id'])}> {_escape(str(s.get('ts')))}")
    text = f"#{c['id']} · {_escape(c.get('origin') or '?')}"
    if c.get("prompt_version"):
        text += f" · prompt {_escape(str(c['prompt_version']))}"
    if c.get("variant_of"):
        text += f" · variant of #{c['variant_of']}"
    if links:
        text += " · " + ", ".join(links[:5])
    return _clip(text, 2000)


def candidate_text(c: dict[str, Any]) -> str:
    """The notification text of a review post (the question escaped: it is mrkdwn too)."""
    return _clip(f"Review candidate #{c['id']}: {_escape(bk.visible(c['question']))}", 300)


def candidate_blocks(c: dict[str, Any], *, quorum: int = 1) -> list[Block]:
    """A review post: status, question, answer, source links, scores, and the buttons that the
    candidate's status allows (Approve / Edit / Reject; Reject asks to confirm)."""
    blocks: list[Block] = [
        bk.section(status_line(c, quorum)),
        bk.section(_clip("*Question*\n" + _quote(c["question"]), 2000)),
        bk.section(_clip("*Answer*\n" + _quote(c["answer"]), bk.TEXT_LIMIT)),
        bk.context(source_line(c), score_line(c)),
    ]
    value = str(c["id"])
    buttons = []
    if c["status"] in ("pending", "auto_rejected") and not c.get("stale"):
        buttons.append(bk.button("Approve", ACTION_APPROVE, value, style="primary"))
    if c["status"] in ("pending", "auto_rejected", "approved") and not c.get("stale"):
        buttons.append(bk.button("Edit", ACTION_EDIT, value))
    if c["status"] in ("pending", "auto_rejected", "approved", "variant"):
        buttons.append(bk.button("Reject", ACTION_REJECT, value, style="danger", confirm_with=bk.confirm(
            "Reject this pair?", "It will not be used for training. You will be asked for a reason.",
            "Reject", danger=True)))
    if buttons:
        blocks.append(bk.actions(*buttons, block_id=f"review_{value}"))
    return blocks


def _metadata(c: dict[str, Any]) -> str:
    return json.dumps({"candidate_id": c["id"]})


def candidate_id_of(private_metadata: str | None) -> int | None:
    """The candidate id a modal carries, or None when the metadata is not ours."""
    try:
        value = json.loads(private_metadata or "")
    except ValueError:
        return None
    return parse_id(value.get("candidate_id")) if isinstance(value, dict) else None


def _input(block_id: str, label: str, initial: str, *, multiline: bool, hint: str | None = None) -> Block:
    return bk.text_input(block_id, label, action_id=INPUT, initial=initial, multiline=multiline, hint=hint)


def _too_long(field: str, text: str) -> Block:
    return bk.context(f":warning: The {field} is {len(text):,} characters, longer than a Slack form "
                      f"holds ({bk.INPUT_LIMIT:,}); leave this field empty to keep it as it is, or "
                      "write a shorter one.")


def edit_modal(c: dict[str, Any]) -> Block:
    """The Edit modal, prefilled with the pair. A field too long for a form is not prefilled (a cut
    text would be saved back): it is kept unless the reviewer writes a new one."""
    blocks: list[Block] = []
    for block_id, label, multiline in ((BLOCK_QUESTION, "Question", False), (BLOCK_ANSWER, "Answer", True)):
        text = c["question"] if block_id == BLOCK_QUESTION else c["answer"]
        whole = bk.fits_input(text)
        if not whole:
            blocks.append(_too_long(label.lower(), text))
        hint = "Saving puts the pair back to pending: it then needs approval." if multiline else None
        input_block = _input(block_id, label, text if whole else "", multiline=multiline, hint=hint)
        if not whole:
            input_block["optional"] = True
        blocks.append(input_block)
    return bk.modal(VIEW_EDIT, f"Edit pair #{c['id']}", blocks, submit="Save", private_metadata=_metadata(c))


def reject_modal(c: dict[str, Any]) -> Block:
    """The Reject modal: a reason is required."""
    return bk.modal(VIEW_REJECT, f"Reject pair #{c['id']}", [
        bk.section(_clip("*Question*\n" + _quote(c["question"]), bk.TEXT_LIMIT)),
        _input(BLOCK_REASON, "Why is it rejected?", "", multiline=True,
               hint="Shown to other reviewers and kept in the audit log."),
    ], submit="Reject", private_metadata=_metadata(c))


def submitted(view: dict[str, Any], block_id: str) -> str:
    """The text a modal's input block submitted (empty when absent)."""
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    value = (values.get(INPUT) or {}).get("value")
    return value if isinstance(value, str) else ""


def decision_text(action: str, actor: str, message: str) -> str:
    """The thread reply that records a decision under the review post."""
    icon = {"approve": ":white_check_mark:", "reject": ":x:", "edit": ":pencil2:",
            "stale": ":wastebasket:"}.get(action, "•")
    return _clip(f"{icon} {bk.mention(actor)} {action}: {_escape(message)}", bk.TEXT_LIMIT)
