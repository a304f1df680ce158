"""What is said in a private channel or a DM stays there: a question the bot abstains on is not
copied into the review channel (a private channel gets a notice naming only the channel), and the
"Save as FAQ" offer for an answer given there is made there, to the reviewer who clicked 👍."""

from __future__ import annotations

import json

import pytest

from tests.conftest import MEMBER, REVIEWER
from tests.fakes.wait import eventually, stays
from tests.serving.conftest import answer_bot, answer_bot_factory, answer_settings, fake_llm, watch  # noqa: F401
from tests.serving.test_answers_flow import _text, action_value, final_update, mention

SECRET = "C0SECRET"
QUESTION = "Is the Falcon merger announced on Friday?"


def review_posts(fake_slack) -> list[dict]:
    return [c.params for c in fake_slack.calls_for("chat.postMessage") if c.params.get("channel") == "C0REVIEW"]


@pytest.fixture
def secret(db, fake_slack) -> str:
    """A watched private channel."""
    fake_slack.add_channel(SECRET, "secret", is_private=True)
    watch(db, SECRET)
    db.execute("update channels set is_private = 1 where id = ?", [SECRET])
    db.conn.commit()
    return SECRET


@pytest.fixture
def private_bot(answer_bot_factory, answer_settings, secret):  # noqa: F811
    """The answer bot with the calibrated thresholds, so that it abstains on an unknown question."""
    return answer_bot_factory(answer_settings.model_copy(update={"answer_abstain_score": 0.44}))


def test_an_abstained_question_in_a_private_channel_reaches_reviewers_only_as_a_notice(
        private_bot, fake_slack, fake_llm, db):  # noqa: F811
    mention(private_bot, QUESTION, "1700000300.000100", channel=SECRET)
    body = _text(final_update(fake_slack))
    assert "I don't know this one yet" in body and "ask your team directly" in body
    notice = eventually(lambda: review_posts(fake_slack), what="the notice")[0]
    assert f"<#{SECRET}>" in notice["text"] and "private channel" in notice["text"]
    assert "archives/C0SECRET/p1700000300000100" in notice["text"]  # Slack opens it for members only
    everything = json.dumps([c.params for c in fake_slack.calls if c.params.get("channel") == "C0REVIEW"])
    assert "Falcon" not in everything and MEMBER not in everything
    assert db.execute("select count(*) from escalations").fetchone()[0] == 0


def test_an_abstained_question_in_a_dm_is_not_posted_to_the_review_channel(
        answer_bot_factory, answer_settings, fake_slack, fake_llm, db):  # noqa: F811
    bot = answer_bot_factory(answer_settings.model_copy(update={"answer_abstain_score": 0.44}))
    bot.event({"type": "message", "channel": "D0DM", "user": MEMBER, "text": QUESTION,
               "ts": "1700000310.000100", "channel_type": "im", "event_ts": "1700000310.000100"})
    body = _text(final_update(fake_slack))
    assert "ask your team directly" in body
    stays(lambda: review_posts(fake_slack) == [], 0.5, what="nothing in the review channel")


def test_save_as_faq_for_an_answer_in_a_private_channel_is_offered_there_not_in_review(
        answer_bot, secret, fake_slack, fake_llm, db):  # noqa: F811
    fake_llm.script = ["Not announced yet; wait for the all-hands."]
    mention(answer_bot, "Is the Falcon deal public?", "1700000320.000100", channel=SECRET, user=REVIEWER)
    final = final_update(fake_slack)
    answer_bot.block_action("answer_up", action_value(final, "answer_up"), user_id=REVIEWER,
                             channel=SECRET, message_ts=final["ts"])
    offer = eventually(lambda: [c.params for c in fake_slack.calls_for("chat.postEphemeral")
                                if "answer_save_faq" in json.dumps(c.params.get("blocks") or "")],
                       what="the offer to the reviewer")[0]
    assert offer["channel"] == SECRET and offer["user"] == REVIEWER
    stays(lambda: review_posts(fake_slack) == [], 0.3, what="nothing in the review channel")
