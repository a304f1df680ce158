"""👍/👎 on answers: ratings per user, the 👎 correction modal that becomes a candidate pair
(origin ``feedback``) for review, and "Save as FAQ" offered to reviewers after a 👍 on an answer no
approved pair covers. The listeners are added by ``bot.answers.register``."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import answer_blocks as ab
from bot import escalation
from bot.context import BotContext, envelope_team
from bot.ephemeral import tell
from bot.conversations import is_private
from bot.roles import has_role, refusal
from curation.candidates import add_candidate
from curation.ids import parse_id
from curation.store import now, transaction

log = logging.getLogger(__name__)


def _answer_row(db: Any, team_id: str, value: str) -> dict[str, Any] | None:
    answer_id = parse_id(value)
    if answer_id is None:
        return None
    rows = list(db.query("select * from answers where id = ? and team_id = ?", [answer_id, team_id]))
    return rows[0] if rows else None


def record_feedback(db: Any, answer: dict[str, Any], user_id: str, rating: int,
                    correction: str | None = None, candidate_id: int | None = None) -> bool:
    """Store one user's rating of one answer (a second click changes it). True on the first 👍/👎
    of this user for this answer."""
    with transaction(db):
        existed = db.execute("select 1 from feedback where answer_id = ? and user_id = ?",
                             [answer["id"], user_id]).fetchone() is not None
        db.execute(
            "insert into feedback (team_id, answer_id, user_id, rating, correction, candidate_id, "
            "created_at) values (?, ?, ?, ?, ?, ?, ?) on conflict(answer_id, user_id) do update set "
            "rating = excluded.rating, correction = coalesce(excluded.correction, correction), "
            "candidate_id = coalesce(excluded.candidate_id, candidate_id)",
            [answer["team_id"], answer["id"], user_id, rating, correction, candidate_id, now()])
    return not existed


def feedback_candidate(db: Any, answer: dict[str, Any], user_id: str, answer_text: str,
                       evidence: str) -> int:
    """A candidate pair (origin ``feedback``) for review, sourced from the asking thread."""
    added = add_candidate(
        db, answer["team_id"], answer["question"], answer_text, origin="feedback",
        sources=[{"kind": "message", "channel_id": answer["channel_id"], "ts": answer["thread_ts"]}],
        evidence=evidence, created_by=user_id,
    )
    return added.id


def register(app, ctx: BotContext) -> None:
    """Add the 👍/👎 actions, the correction modal, "Save as FAQ" and "Ask the team" to ``app``."""

    def _team(body: dict) -> str:
        return envelope_team(body)

    def _rated(body: dict, action: dict) -> tuple[Any, str, dict[str, Any] | None]:
        """The store, the rater and the answer that a 👍/👎 button sits on (None when it is gone)."""
        db = ctx.db()
        return db, body["user"]["id"], _answer_row(db, _team(body), action.get("value"))

    @app.action(ab.ACTION_ASK_TEAM)
    def on_ask_team(ack, body, client, action):  # noqa: ANN001
        """A closest answer was approved for another question: the person who clicks wants the
        team's own answer, so the question becomes an open question, as an abstention's does (the
        expert's reply → a candidate → on approval they are told in this thread)."""
        ack()
        _, user, answer = _rated(body, action)
        if answer is None:
            return
        asked = escalation.escalate(ctx, client, team_id=answer["team_id"], channel=answer["channel_id"],
                                    thread_ts=answer["thread_ts"], user_id=user, question=answer["question"],
                                    answer_id=answer["id"])
        _ephemeral_to(client, answer, user, "I have asked the team; you will hear back in this thread once "
                      "they have answered." if asked else "Please ask your team directly.")

    @app.action(ab.ACTION_UP)
    def on_up(ack, body, client, action):  # noqa: ANN001
        ack()
        db, user, answer = _rated(body, action)
        if answer is None:
            return
        first = record_feedback(db, answer, user, +1)
        _ephemeral_to(client, answer, user, "Thanks for the feedback! :+1:")
        if first and not answer["verified"] and not _offered(db, answer["id"]):
            _offer_save(ctx, client, answer, user)

    @app.action(ab.ACTION_DOWN)
    def on_down(ack, body, client, action):  # noqa: ANN001
        ack()
        db, user, answer = _rated(body, action)
        if answer is None:
            return
        # the modal first (its trigger_id expires after about 3 s); the 👎 counts even if it fails
        try:
            client.views_open(trigger_id=body["trigger_id"], view=ab.correction_modal(
                answer["id"], answer["question"], answer["answer"], answer["channel_id"]))
        except SlackApiError as err:
            log.warning("the correction modal did not open: %s", err.response.get("error"))
        record_feedback(db, answer, user, -1)

    @app.view(ab.CORRECTION_VIEW)
    def on_correction(ack, body, view, client):  # noqa: ANN001
        values = view.get("state", {}).get("values", {})
        text = ((values.get(ab.CORRECTION_BLOCK) or {}).get(ab.CORRECTION_INPUT) or {}).get("value") or ""
        if len(text.strip()) < 2:
            ack(response_action="errors", errors={ab.CORRECTION_BLOCK: "Write the correct answer."})
            return
        ack()
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        db = ctx.db()
        user = body["user"]["id"]
        answer = _answer_row(db, _team(body), meta.get("answer_id"))
        if answer is None:
            return
        cid = feedback_candidate(db, answer, user, text.strip(),
                                 f"👎 correction by <@{user}> of answer {answer['id']} "
                                 f"(model {answer['model']}): {answer['answer']}")
        record_feedback(db, answer, user, -1, correction=text.strip(), candidate_id=cid)
        _ephemeral_to(client, answer, user, f"Thanks! Your correction is queued for review "
                      f"(candidate #{cid}); once approved it goes into the next dataset.")

    @app.action(ab.ACTION_SAVE_FAQ)
    def on_save_faq(ack, body, client, action, respond):  # noqa: ANN001
        ack()
        user = body["user"]["id"]
        if not has_role(ctx.settings, user, "reviewer", client, team_id=_team(body)):
            respond(refusal(ctx.settings, "reviewer", "save answers as FAQs", team_id=_team(body)),
                    replace_original=False)
            return
        db = ctx.db()
        answer = _answer_row(db, _team(body), action.get("value"))
        if answer is None:
            return
        cid = feedback_candidate(db, answer, user, answer["answer"],
                                 f"👍 answer {answer['id']} (model {answer['model']}) saved as FAQ by <@{user}>")
        respond(f":white_check_mark: Saved as candidate #{cid}; it goes through review like any pair.",
                replace_original=True)


def _offered(db: Any, answer_id: int) -> bool:
    return db.execute("select 1 from audit where action = 'offer_save_faq' and target = ?",
                      [str(answer_id)]).fetchone() is not None


def _offer_save(ctx: BotContext, client: WebClient, answer: dict[str, Any], user: str) -> None:
    """Offer "Save as FAQ" in the review channel (or to the clicking reviewer), once per answer. An
    answer in a private channel or a DM is offered only there: its question stays private."""
    from curation.store import audit

    blocks = ab.save_faq_blocks(answer["id"], answer["question"], answer["answer"])
    try:
        if ctx.settings.review_channel and not is_private(ctx.db(), client, answer["team_id"],
                                                          answer["channel_id"]):
            client.chat_postMessage(channel=ctx.settings.review_channel, blocks=blocks,
                                    text="An answer was marked helpful: save it as a FAQ?")
        elif has_role(ctx.settings, user, "reviewer", client, team_id=answer["team_id"]):
            client.chat_postEphemeral(channel=answer["channel_id"], user=user, blocks=blocks,
                                      text="Save this answer as a FAQ?")
        else:
            return
    except SlackApiError as err:
        log.warning("offering Save as FAQ failed: %s", err.response.get("error"))
        return
    db = ctx.db()
    with transaction(db):
        audit(db, answer["team_id"], user, "offer_save_faq", str(answer["id"]), via="slack")


def _ephemeral_to(client: WebClient, answer: dict[str, Any], user: str, text: str) -> None:
    tell(client, answer["channel_id"], user, text, thread_ts=answer["thread_ts"])
