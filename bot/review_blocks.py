"""Block Kit payloads for review posts and modals: pure functions, no Slack calls.

Slack's limits that shape them: a section's text holds at most 3000 characters, a context element
2000, a plain-text input 3000, a modal title 24, a button value 2000, private_metadata 3000.
"""

from __future__ import annotations

import json
from typing import Any

from curation.ids import parse_id

ACTION_APPROVE = "review_approve"
ACTION_EDIT = "review_edit"
ACTION_REJECT = "review_reject"
VIEW_EDIT = "review_edit_view"
VIEW_REJECT = "review_reject_view"
BLOCK_QUESTION, BLOCK_ANSWER, BLOCK_REASON = "question", "answer", "reason"
INPUT = "value"

SECTION_LIMIT = 3000
INPUT_LIMIT = 3000
_STATUS = {
    "pending": ":hourglass_flowing_sand: Pending review",
    "approved": ":white_check_mark: Approved",
    "rejected": ":x: Rejected",
    "auto_rejected": ":warning: Auto-rejected by the checks",
    "variant": ":twisted_rightwards_arrows: Variant",
}

Block = dict[str, Any]


def _clip(text: str, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack mrkdwn control characters, so pair text cannot ping @channel or fake a link."""
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in _escape(text).splitlines() or [""])


def status_line(c: dict[str, Any], quorum: int = 1) -> str:
    """The status shown on a post: status, approvals toward the quorum, who decided."""
    line = _STATUS.get(c["status"], c["status"])
    approvals = c.get("approvals") or []
    if c["status"] == "pending" and quorum > 1:
        line += f" ({len(approvals)}/{quorum} approvals)"
    if c["status"] == "approved" and approvals:
        line += " by " + ", ".join(f"<@{u}>" if u.startswith(("U", "W")) else u for u in approvals)
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
        parts.append(f"{name} {mark} {float(sc.get('score', 0)):.2f}")
    parts.append(f"PII scrubbed: {int(c.get('scrub_count') or 0)}")
    return _clip(" · ".join(parts), 2000)


def source_line(c: dict[str, Any]) -> str:
    """Links to the sources (permalinks where known) and the origin and prompt version."""
    links = []
    for i, s in enumerate(c.get("sources") or [], start=1):
        if s.get("permalink"):
            links.append(f"<{s['permalink']}|source {i}>")
        elif s.get("document_id") is not None:
            links.append(f"document {s['document_id']}")
        elif s.get("channel_id"):
            links.append(f"<#{s['channel_id']}> {s.get('ts')}")
    text = f"#{c['id']} · {c.get('origin') or '?'}"
    if c.get("prompt_version"):
        text += f" · prompt {c['prompt_version']}"
    if c.get("variant_of"):
        text += f" · variant of #{c['variant_of']}"
    if links:
        text += " · " + ", ".join(links[:5])
    return _clip(text, 2000)


def candidate_text(c: dict[str, Any]) -> str:
    """The notification text of a review post."""
    return _clip(f"Review candidate #{c['id']}: {c['question']}", 300)


def candidate_blocks(c: dict[str, Any], *, quorum: int = 1) -> list[Block]:
    """A review post: status, question, answer, source links, scores, and the buttons that the
    candidate's status allows (Approve / Edit / Reject; Reject asks to confirm)."""
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": status_line(c, quorum)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                      "text": _clip("*Question*\n" + _quote(c["question"]), SECTION_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                      "text": _clip("*Answer*\n" + _quote(c["answer"]), SECTION_LIMIT)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": source_line(c)},
                                          {"type": "mrkdwn", "text": score_line(c)}]},
    ]
    value = str(c["id"])
    buttons: list[Block] = []
    if c["status"] in ("pending", "auto_rejected") and not c.get("stale"):
        buttons.append({"type": "button", "action_id": ACTION_APPROVE, "style": "primary", "value": value,
                        "text": {"type": "plain_text", "text": "Approve"}})
    if c["status"] in ("pending", "auto_rejected", "approved") and not c.get("stale"):
        buttons.append({"type": "button", "action_id": ACTION_EDIT, "value": value,
                        "text": {"type": "plain_text", "text": "Edit"}})
    if c["status"] in ("pending", "auto_rejected", "approved", "variant"):
        buttons.append({
            "type": "button", "action_id": ACTION_REJECT, "style": "danger", "value": value,
            "text": {"type": "plain_text", "text": "Reject"},
            "confirm": {"title": {"type": "plain_text", "text": "Reject this pair?"},
                        "text": {"type": "mrkdwn", "text": "It will not be used for training. "
                                 "You will be asked for a reason."},
                        "confirm": {"type": "plain_text", "text": "Reject"},
                        "deny": {"type": "plain_text", "text": "Cancel"}, "style": "danger"},
        })
    if buttons:
        blocks.append({"type": "actions", "block_id": f"review_{value}", "elements": buttons})
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
    element: Block = {"type": "plain_text_input", "action_id": INPUT, "multiline": multiline,
                      "max_length": INPUT_LIMIT}
    if initial:
        element["initial_value"] = _clip(initial, INPUT_LIMIT)
    block: Block = {"type": "input", "block_id": block_id, "element": element,
                    "label": {"type": "plain_text", "text": label}}
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def edit_modal(c: dict[str, Any]) -> Block:
    """The Edit modal, prefilled with the pair."""
    return {
        "type": "modal", "callback_id": VIEW_EDIT, "private_metadata": _metadata(c),
        "title": {"type": "plain_text", "text": f"Edit pair #{c['id']}"[:24]},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _input(BLOCK_QUESTION, "Question", c["question"], multiline=False),
            _input(BLOCK_ANSWER, "Answer", c["answer"], multiline=True,
                   hint="Saving puts the pair back to pending: it then needs approval."),
        ],
    }


def reject_modal(c: dict[str, Any]) -> Block:
    """The Reject modal: a reason is required."""
    return {
        "type": "modal", "callback_id": VIEW_REJECT, "private_metadata": _metadata(c),
        "title": {"type": "plain_text", "text": f"Reject pair #{c['id']}"[:24]},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn",
                                          "text": _clip("*Question*\n" + _quote(c["question"]), SECTION_LIMIT)}},
            _input(BLOCK_REASON, "Why is it rejected?", "", multiline=True,
                   hint="Shown to other reviewers and kept in the audit log."),
        ],
    }


def submitted(view: dict[str, Any], block_id: str) -> str:
    """The text a modal's input block submitted (empty when absent)."""
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    value = (values.get(INPUT) or {}).get("value")
    return value if isinstance(value, str) else ""


def decision_text(action: str, actor: str, message: str) -> str:
    """The thread reply that records a decision under the review post."""
    icon = {"approve": ":white_check_mark:", "reject": ":x:", "edit": ":pencil2:",
            "stale": ":wastebasket:"}.get(action, "•")
    who = f"<@{actor}>" if actor.startswith(("U", "W")) else actor
    return _clip(f"{icon} {who} {action}: {_escape(message)}", 3000)
