"""FAQs by hand: `/faq` opens a modal for a question and an answer; the message shortcut
"Save as FAQ" opens the same modal prefilled from the thread. Either way the pair is stored as a
candidate from source ``manual`` and goes to review like any other.

A ``trigger_id`` works for about 3 s: the shortcut opens a "reading the thread…" modal at once,
then reads the thread (the store, else ``conversations.replies``) and fills the modal in with
``views.update``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks as bk
from bot.context import BotContext, envelope_team
from bot.ephemeral import tell
from curation.candidates import add_candidate
from curation.errors import CurationError
from curation.messages import thread_messages
from curation.transcript import display_names, render_text

log = logging.getLogger(__name__)

#: /threadtune <name> handlers of this module.
SUBCOMMANDS: dict = {}

VIEW_ID = "faq_modal"
SHORTCUT_ID = "save_as_faq"


# --- pure: the modal ------------------------------------------------------------------------------

def faq_modal(question: str = "", answer: str = "", *, channel: str | None = None,
              sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Block Kit modal; ``private_metadata`` carries the channel and the source messages. A
    question or answer too long for a form is not prefilled (it would be saved cut)."""
    meta = json.dumps({"channel": channel, "sources": sources or []}, separators=(",", ":"))
    if len(meta) > bk.METADATA_LIMIT:  # keep the channel, drop the sources
        meta = json.dumps({"channel": channel, "sources": []})
    notes = [f"The {name} in the thread is longer than a form holds ({bk.INPUT_LIMIT:,} characters); "
             "write a shorter one." for name, text in (("question", question), ("answer", answer))
             if not bk.fits_input(text)]
    return bk.modal(VIEW_ID, "Save as FAQ", [
        bk.context("The pair goes to the reviewers; once approved it is used for answers and training.",
                   *notes),
        bk.text_input("question", "Question", action_id="question", multiline=True,
                      initial=question if bk.fits_input(question) else "",
                      placeholder="How do I reset my VPN token?"),
        bk.text_input("answer", "Answer", action_id="answer", multiline=True,
                      initial=answer if bk.fits_input(answer) else "",
                      placeholder="Open the self-service portal, then …"),
    ], submit="Send to review", private_metadata=meta)


def loading_modal() -> dict[str, Any]:
    """Opened at once by the shortcut, while the thread is read."""
    return bk.modal(VIEW_ID, "Save as FAQ", [bk.context(":hourglass_flowing_sand: Reading the thread…")])


def submitted(view: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """Question, answer and the per-field errors of a submitted modal."""
    values = (view.get("state") or {}).get("values") or {}

    def value(block: str) -> str:
        return str(((values.get(block) or {}).get(block) or {}).get("value") or "").strip()

    question, answer = value("question"), value("answer")
    errors = {}
    if len(question) < 5:
        errors["question"] = "Write the question as someone would ask it."
    if not answer:
        errors["answer"] = "Write the answer the team gives."
    return question, answer, errors


# --- prefill from a thread --------------------------------------------------------------------

def prefill(ctx: BotContext, client: WebClient, team_id: str, channel: str,
            message: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """Question, answer and sources for the shortcut: the thread's first message is the question;
    the answer is the clicked reply, else the reply marked answered, else the first reply by
    someone other than the asker."""
    ts = str(message.get("ts") or "")
    parent_ts = str(message.get("thread_ts") or ts)
    db = ctx.db()
    turns = [{"ts": m["ts"], "user": m["user_id"], "text": m["text"] or "",
              "answered": bool(m["answered"])}
             for m in thread_messages(db, team_id, channel, parent_ts)]
    if not turns:
        try:
            page = client.conversations_replies(channel=channel, ts=parent_ts, limit=200)
            turns = [{"ts": str(m.get("ts")), "user": m.get("user"), "text": m.get("text") or "",
                      "answered": False} for m in page.get("messages") or [] if not m.get("bot_id")]
        except SlackApiError as err:
            log.info("conversations.replies for the FAQ shortcut failed: %s", err.response.get("error"))
    if not turns:
        turns = [{"ts": ts, "user": message.get("user"), "text": message.get("text") or "",
                  "answered": False}]
    parent = next((t for t in turns if t["ts"] == parent_ts), turns[0])
    replies = [t for t in turns if t is not parent]
    clicked = next((t for t in replies if t["ts"] == ts), None)
    answer = clicked or next((t for t in reversed(replies) if t["answered"]), None) or next(
        (t for t in replies if t["user"] != parent["user"]), None)
    names = display_names(db, team_id)
    sources = [{"kind": "message", "channel_id": channel, "ts": parent["ts"]}]
    if answer:
        sources.append({"kind": "message", "channel_id": channel, "ts": answer["ts"]})
    return (render_text(parent["text"], names),
            render_text(answer["text"], names) if answer else "", sources)


# --- listeners ----------------------------------------------------------------------------------

def register(app, ctx: BotContext) -> None:
    """Add `/faq`, the "Save as FAQ" message shortcut and the modal's submit handler."""

    @app.command("/faq")
    def open_faq(ack, body, client):  # noqa: ANN001
        ack()
        client.views_open(trigger_id=body["trigger_id"],
                          view=faq_modal(channel=body.get("channel_id")))

    @app.shortcut(SHORTCUT_ID)
    def save_as_faq(ack, body, client):  # noqa: ANN001
        ack()
        opened = client.views_open(trigger_id=body["trigger_id"], view=loading_modal())["view"]
        team_id = envelope_team(body)
        channel = (body.get("channel") or {}).get("id") or ""
        question, answer, sources = prefill(ctx, client, team_id, channel, body.get("message") or {})
        client.views_update(view_id=opened["id"], hash=opened.get("hash"),
                            view=faq_modal(question, answer, channel=channel, sources=sources))

    @app.view(VIEW_ID)
    def submit_faq(ack, body, client, view):  # noqa: ANN001
        question, answer, errors = submitted(view)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        user = body.get("user") or {}
        team_id = envelope_team(body)
        meta = _metadata(view.get("private_metadata"))
        try:
            added = add_candidate(ctx.db(), team_id, question, answer, origin="manual",
                                  sources=meta.get("sources") or [], created_by=user.get("id") or "")
            text = (f":inbox_tray: Saved as FAQ candidate #{added.id}; it goes to review."
                    if added.created else f"That pair is already candidate #{added.id} ({added.status}).")
            if added.created and added.status == "auto_rejected":
                text = f"Candidate #{added.id} was stored but did not pass the checks: {bk.escape(added.reason)}"
        except CurationError as err:
            text = f":warning: {bk.escape(str(err))}"
        tell(client, meta.get("channel"), user.get("id"), text)


def _metadata(raw: str | None) -> dict[str, Any]:
    try:
        meta = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(meta, dict):
        return {}
    meta["sources"] = [s for s in meta.get("sources") or [] if isinstance(s, dict)
                       and s.get("kind") == "message" and s.get("channel_id") and s.get("ts")]
    return meta
