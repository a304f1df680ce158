"""The ways to ask: a mention in a watched channel, a DM, `/ask QUESTION`, and the Retry button.

Each listener acks first (bolt acks events before it runs them; `/ask` and Retry call ``ack()``
before anything else), then hands the question to the :class:`bot.answers.Answerer`.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from bot import answer_blocks as ab
from bot import answer_feedback
from bot.answers import MAX_QUESTION_CHARS, Answerer, Question, question_text
from bot.blocks import cut, escape, mention
from bot.context import BotContext, envelope_team
from curation.channels import is_watched
from curation.event_ids import first_delivery

#: /threadtune <name> handlers of this module.
SUBCOMMANDS: dict = {}


def _is_dm(event: dict) -> bool:
    return (event.get("channel_type") == "im" and not event.get("subtype")
            and not event.get("bot_id"))


def asked_text(user: str, question: str) -> str:
    """The message `/ask` posts so that the answer has a thread: who asked what (escaped)."""
    return f"{mention(user)} asked: {cut(escape(question), 2900)}"


def register(app, ctx: BotContext) -> None:  # noqa: ANN001
    """Add the mention, DM and `/ask` listeners, Retry, and the feedback actions to ``app``."""
    answerer = Answerer(ctx)
    app._threadtune_answerer = answerer  # tests and benches reach the pool through the app

    @app.event("app_mention")
    def on_mention(body, event, client):  # noqa: ANN001
        team_id = body.get("team_id") or ""
        db = ctx.db()
        if not first_delivery(db, body.get("event_id"), team_id, scope="answer"):
            return  # a Slack retry: already answered
        q = Question(team_id, event["channel"], event.get("user") or "", question_text(event.get("text", "")),
                     event.get("thread_ts") or event["ts"], event["ts"])
        if not is_watched(db, team_id, q.channel):
            answerer.ephemeral(client, q, "I answer in channels an admin has added with "
                                "`/threadtune watch`; ask one to add this channel, or DM me.")
            return
        answerer.ask(client, q)

    @app.event("message", matchers=[lambda event: _is_dm(event)])
    def on_dm(body, event, client):  # noqa: ANN001
        team_id = body.get("team_id") or ""
        if not first_delivery(ctx.db(), body.get("event_id"), team_id, scope="answer"):
            return
        q = Question(team_id, event["channel"], event.get("user") or "", question_text(event.get("text", "")),
                     event.get("thread_ts") or event["ts"], event["ts"])
        answerer.ask(client, q)

    @app.command("/ask")
    def on_ask(ack, body, client, respond):  # noqa: ANN001
        ack()
        text = (body.get("text") or "").strip()
        if not text:
            respond("Usage: `/ask QUESTION` — e.g. `/ask how do I reset my password?`")
            return
        team_id, channel, user = body.get("team_id") or "", body.get("channel_id") or "", body.get("user_id") or ""
        try:
            parent = client.chat_postMessage(channel=channel, text=asked_text(user, text))
        except SlackApiError as err:
            respond(f":warning: I cannot post in this channel ({err.response.get('error')}); "
                    "invite me with `/invite @threadtune` or DM me the question.")
            return
        answerer.ask(client, Question(team_id, parent["channel"], user, text[:MAX_QUESTION_CHARS],
                                      parent["ts"], parent["ts"]))

    @app.action(ab.ACTION_RETRY)
    def on_retry(ack, body, client, action):  # noqa: ANN001
        ack()
        q = answerer.retry_question(action.get("value") or "", envelope_team(body))
        if q is None:
            return
        ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
        answerer.ask(client, q, placeholder_ts=ts)

    answer_feedback.register(app, ctx)
