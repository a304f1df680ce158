"""Abstain and ask the team: a question the bot will not guess at becomes an open question in the
review channel. The first reply there from a reviewer or admin becomes a candidate pair (origin
``escalation``), posted in that thread with its review buttons; once it is approved, the asker is
told in their own thread, with the approved answer.

The store side lives in ``curation/escalations.py``; the approval hook is called by
``bot/review.py``'s ``decide``.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import review_blocks as rb
from bot.blocks import cut, escape
from bot.context import BotContext
from bot.conversations import is_private
from bot.roles import role_of
from curation.candidates import add_candidate, get_candidate
from curation.escalations import (attach_candidate, join_escalation, mark_notified, open_escalation, open_in_thread,
                                  same_pending, to_notify)
from curation.store import transaction

log = logging.getLogger(__name__)

#: Longest question or answer quoted in a message (Slack's section limit is 3000).
QUOTE_CHARS = 2500


def quote(text: str) -> str:
    """``text`` escaped, cut (never inside an escape), as a mrkdwn block quote."""
    body = cut(escape(text), QUOTE_CHARS)
    return "\n".join("> " + line for line in body.splitlines() or [""])


def open_question_text(asker: str, channel: str, question: str) -> str:
    """The review-channel post of an open question (ids come from Slack, the question is escaped)."""
    return (f":question: *Open question* from <@{asker}> in <#{channel}>; no approved answer matches it.\n"
            f"{quote(question)}\nReply in this thread with the answer: the first reply from a reviewer "
            "becomes a candidate pair for review, and the asker is told once it is approved.")


def private_notice_text(channel: str, permalink: str | None) -> str:
    """The review-channel notice of a question from a private channel: where, never what or who."""
    there = f"<{permalink}|there>" if permalink else "there"
    return (f":lock: A question asked in <#{channel}>, a private channel, has no approved answer. "
            f"Its text stays in that channel: reviewers who are members can read it {there} and "
            "answer in its thread.")


def escalate(ctx: BotContext, client: WebClient, *, team_id: str, channel: str, thread_ts: str,
             user_id: str, question: str, answer_id: int | None) -> bool:
    """Post ``question`` to the review channel as an open question; False without a review channel
    or when Slack refuses the post (the user is then told to ask the team directly).

    A question from a private channel or a DM is never copied there: for a private channel the
    review channel gets a notice naming only the channel (and a link Slack opens for its members
    alone), for a DM nothing; both return False."""
    review_channel = ctx.settings.review_channel
    if not review_channel:
        return False
    if is_private(ctx.db(), client, team_id, channel):
        if not channel.startswith("D"):
            _notify_private(client, review_channel, channel, thread_ts)
        return False
    first = same_pending(ctx.db(), team_id, question)
    if first is not None:  # asked again while open or in review: one thread, every asker told
        try:
            client.chat_postMessage(channel=first["review_channel"], thread_ts=first["review_ts"],
                                    text=f"Asked again by <@{user_id}> in <#{channel}>:\n{quote(question)}",
                                    unfurl_links=False, unfurl_media=False)
        except SlackApiError as err:
            log.warning("could not note the repeated question: %s", err.response.get("error"))
        join_escalation(ctx.db(), first, channel_id=channel, thread_ts=thread_ts, user_id=user_id,
                        question=question, answer_id=answer_id)
        return True
    try:
        resp = client.chat_postMessage(channel=review_channel, text=open_question_text(user_id, channel, question),
                                       unfurl_links=False, unfurl_media=False)
    except SlackApiError as err:
        log.warning("could not post the open question to %s: %s", review_channel, err.response.get("error"))
        return False
    open_escalation(ctx.db(), team_id, channel_id=channel, thread_ts=thread_ts, user_id=user_id,
                    question=question, answer_id=answer_id, review_channel=resp["channel"], review_ts=resp["ts"])
    return True


def _notify_private(client: WebClient, review_channel: str, channel: str, thread_ts: str) -> None:
    try:
        link = client.chat_getPermalink(channel=channel, message_ts=thread_ts)["permalink"]
    except SlackApiError:
        link = None
    try:
        client.chat_postMessage(channel=review_channel, text=private_notice_text(channel, link),
                                unfurl_links=False, unfurl_media=False)
    except SlackApiError as err:
        log.warning("could not post the private-question notice to %s: %s", review_channel,
                    err.response.get("error"))


def take_reply(ctx: BotContext, client: WebClient, team_id: str, event: dict[str, Any]) -> int | None:
    """An expert's reply in an open question's thread becomes its candidate; returns the id."""
    db = ctx.db()
    channel, thread_ts = event.get("channel") or "", event.get("thread_ts") or ""
    esc = open_in_thread(db, team_id, channel, thread_ts)
    user, text = event.get("user") or "", (event.get("text") or "").strip()
    if esc is None or not text or role_of(ctx.settings, user, client, team_id=team_id) not in ("reviewer", "admin"):
        return None
    # Sourced from the asker's thread, as feedback pairs are: the expert answered that conversation,
    # so the pair may be seen where it may be seen (curation.visibility), not only in the review channel.
    added = add_candidate(db, team_id, esc["question"], text, origin="escalation",
                          sources=[{"kind": "message", "channel_id": esc["channel_id"], "ts": esc["thread_ts"]}],
                          evidence=f"reply to an open question from {esc['user_id']}", created_by=user)
    if not attach_candidate(db, esc["id"], added.id):
        return None
    c = get_candidate(db, team_id, added.id)
    note = (f"Thanks <@{user}>: saved as candidate #{added.id}"
            + (f", but it failed the checks ({escape(added.reason or '')}); edit it to fix" if added.status == "auto_rejected" else "")
            + ". Approve it here; the asker is told once it is approved.")
    try:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=note)
        resp = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=rb.candidate_text(c),
                                       blocks=rb.candidate_blocks(c, quorum=ctx.settings.review_quorum),
                                       unfurl_links=False, unfurl_media=False)
    except SlackApiError as err:
        log.warning("could not post candidate %s for review: %s", added.id, err.response.get("error"))
        return added.id
    with transaction(db):
        db["candidates"].update(added.id, {"review_channel": resp["channel"], "review_ts": resp["ts"]})
    return added.id


#: Errors of a reply into the asker's thread after which a DM still reaches them (the thread or
#: the channel is gone, or the bot is no longer in it).
DM_INSTEAD = frozenset({"cannot_reply_to_message", "thread_not_found", "message_not_found",
                        "channel_not_found", "not_in_channel", "is_archived"})


def notify_answered(db: Any, client: WebClient, team_id: str, candidate_id: int) -> int:
    """Tell each asker whose open question ``candidate_id`` answers, now approved; returns how many.
    Called on approval in Slack (bot/review.py) and by `threadtune review approve`.

    In the asker's thread; when that thread or channel is gone (deleted, archived, the bot removed),
    in a DM that quotes their question too. An asker Slack cannot reach either way stays to be told
    (the next approval of the pair tries again)."""
    told = 0
    for esc in to_notify(db, team_id, candidate_id):
        answer = quote(get_candidate(db, team_id, candidate_id)["answer"])
        try:
            try:
                client.chat_postMessage(channel=esc["channel_id"], thread_ts=esc["thread_ts"],
                                        text=f"<@{esc['user_id']}> your question now has an answer the team "
                                             f"approved:\n{answer}", unfurl_links=False)
            except SlackApiError as err:
                if err.response.get("error") not in DM_INSTEAD:
                    raise
                log.info("asker's thread for escalation %s is gone (%s): telling them in a DM", esc["id"],
                         err.response.get("error"))
                client.chat_postMessage(channel=esc["user_id"], unfurl_links=False,
                                        text=f"You asked:\n{quote(esc['question'] or '')}\nThe team has now "
                                             f"approved an answer:\n{answer}")
        except SlackApiError as err:
            log.warning("could not tell %s about candidate %s: %s", esc["user_id"], candidate_id,
                        err.response.get("error"))
            continue
        mark_notified(db, esc["id"])
        told += 1
    return told


def _is_thread_reply(event: dict[str, Any]) -> bool:
    return (bool(event.get("thread_ts")) and event.get("thread_ts") != event.get("ts")
            and not event.get("subtype") and not event.get("bot_id"))


def register(app, ctx: BotContext) -> None:
    """Listen for replies in the review channel's open-question threads."""

    def in_review_channel(event: dict) -> bool:
        return bool(ctx.settings.review_channel) and event.get("channel") == ctx.settings.review_channel \
            and _is_thread_reply(event)

    @app.event("message", matchers=[in_review_channel])
    def on_reply(body, event, client):  # noqa: ANN001
        team_id = body.get("team_id") or ""
        try:
            take_reply(ctx, client, team_id, event)
        except Exception:  # a reply that cannot be taken must not make Slack retry the event
            log.exception("could not take the reply to an open question")


#: /threadtune subcommands of this module (none).
SUBCOMMANDS: dict = {}
