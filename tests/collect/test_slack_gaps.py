"""What Slack refuses that the fake once accepted: ephemeral messages to a user who is not in the
channel, replies to threads that do not exist, and response_url's limits and
``replace_original``/``delete_original``; each with how the bot behaves against it."""

from __future__ import annotations

import json

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.conftest import MEMBER, REVIEWER
from tests.fakes.wait import eventually, stays

#: The fixtures of the answer flow (a bot with a model server), for the Save-as-FAQ offer.
from tests.serving.conftest import answer_bot, answer_bot_factory, answer_settings, fake_llm  # noqa: F401
from tests.serving.test_answers_flow import action_value, final_update, mention

SECTION = [{"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}]


@pytest.fixture
def client(fake_slack) -> WebClient:
    return WebClient(token="xoxb-t", base_url=fake_slack.api_url)


def _error(call) -> str:  # noqa: ANN001
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value.response["error"]


# --- chat.postEphemeral: user_not_in_channel ---------------------------------------------------

def test_ephemeral_to_a_user_outside_the_channel_is_refused(fake_slack, client):
    fake_slack.add_channel("C1", "help", members=[MEMBER])
    assert client.chat_postEphemeral(channel="C1", user=MEMBER, text="hi")["ok"]
    assert _error(lambda: client.chat_postEphemeral(channel="C1", user="U0OTHER", text="hi")) == \
        "user_not_in_channel"


def test_faq_confirmation_reaches_a_user_who_left_the_channel_by_dm(bot, db, fake_slack):
    fake_slack.add_channel("C1", "help", members=["U0STAYS"])
    meta = json.dumps({"channel": "C1", "sources": []})
    bot.view_submission("faq_modal", {"question": {"question": {"type": "plain_text_input",
                                                               "value": "How do I reset my VPN token?"}},
                                      "answer": {"answer": {"type": "plain_text_input",
                                                            "value": "Open the portal and choose Reset."}}},
                        user_id=MEMBER, private_metadata=meta)
    dm = fake_slack.wait_for("chat.postMessage")[0].params
    cid = db.execute("select id from candidates").fetchone()[0]
    assert dm["channel"] == MEMBER and f"#{cid}" in dm["text"]
    assert fake_slack.refusals("chat.postEphemeral") == ["user_not_in_channel"]


# --- threads that do not exist --------------------------------------------------------------------

def test_replies_of_a_missing_thread_are_refused_and_a_lone_message_is_a_thread_of_one(fake_slack, client):
    fake_slack.add_channel("C1", "help")
    fake_slack.history["C1"] = [{"type": "message", "ts": "1700000001.000100", "text": "alone", "user": "U1"}]
    assert _error(lambda: client.conversations_replies(channel="C1", ts="1700000009.000100")) == "thread_not_found"
    assert [m["text"] for m in client.conversations_replies(channel="C1", ts="1700000001.000100")["messages"]] \
        == ["alone"]


def test_a_reply_into_a_thread_that_does_not_exist_is_refused(fake_slack, client):
    fake_slack.add_channel("C1", "help")
    assert _error(lambda: client.chat_postMessage(channel="C1", thread_ts="1700000009.000100", text="hi")) == \
        "cannot_reply_to_message"
    parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
    assert client.chat_postMessage(channel="C1", thread_ts=parent, text="reply")["ok"]


def test_a_thread_exists_once_slack_sent_its_message_and_ends_when_it_is_deleted(bot, fake_slack, db):
    """A message event makes its thread exist in the fake; a message_deleted event removes it."""
    from tests.serving.conftest import WATCHED

    bot.message(WATCHED, MEMBER, "hello", "1700000300.000100")
    client = WebClient(token="xoxb-t", base_url=fake_slack.api_url)
    assert client.chat_postMessage(channel=WATCHED, thread_ts="1700000300.000100", text="reply")["ok"]
    bot.event({"type": "message", "subtype": "message_deleted", "channel": WATCHED,
               "deleted_ts": "1700000300.000100", "ts": "1700000301.000100", "hidden": True})
    assert _error(lambda: client.chat_postMessage(channel=WATCHED, thread_ts="1700000300.000100",
                                                  text="late")) == "cannot_reply_to_message"


# --- response_url ---------------------------------------------------------------------------------

def test_a_response_url_takes_five_posts_then_answers_used_url(fake_slack):
    url = fake_slack.response_url("five")
    for i in range(5):
        assert httpx.post(url, json={"text": f"post {i}"}).status_code == 200
    sixth = httpx.post(url, json={"text": "one too many"})
    assert (sixth.status_code, sixth.text) == (404, "used_url")


def test_a_response_url_expires_after_thirty_minutes(fake_slack):
    url = fake_slack.response_url("old")
    fake_slack.responses["old"]["issued"] -= 30 * 60 + 1
    resp = httpx.post(url, json={"text": "late"})
    assert (resp.status_code, resp.text) == (404, "expired_url")


def test_a_response_url_refuses_what_chat_post_message_refuses(fake_slack):
    url = fake_slack.response_url("bad")
    resp = httpx.post(url, json={"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                                                      "text": " "}}]})
    assert (resp.status_code, resp.text) == (400, "invalid_blocks")
    assert httpx.post(url, json={"text": ""}).text == "no_text"


def test_replace_original_and_delete_original_act_on_the_clicked_message(fake_slack, client):
    fake_slack.add_channel("C1", "help")
    ts = client.chat_postMessage(channel="C1", text="offer", blocks=SECTION)["ts"]
    fake_slack.clicked("click", "C1", ts)
    url = fake_slack.response_url("click")
    httpx.post(url, json={"text": "a new message", "replace_original": False})
    assert fake_slack.posted[("C1", ts)]["text"] == "offer"
    httpx.post(url, json={"text": "done", "replace_original": True})
    assert fake_slack.posted[("C1", ts)]["text"] == "done" and fake_slack.posted[("C1", ts)]["blocks"] == []
    assert httpx.post(url, json={"delete_original": True}).text == "ok"
    assert ("C1", ts) not in fake_slack.posted
    assert httpx.post(url, json={"text": "again", "replace_original": True}).status_code == 404


def test_save_as_faq_replaces_the_offer_and_a_refusal_leaves_it(answer_bot, fake_slack, db):  # noqa: F811
    from tests.serving.conftest import WATCHED

    mention(answer_bot, "How do I book a meeting room?", "1700001000.000100")
    final = final_update(fake_slack)
    answer_bot.block_action("answer_up", action_value(final, "answer_up"), user_id=MEMBER,
                            channel=WATCHED, message_ts=final["ts"])
    posted = fake_slack.wait_for("chat.postMessage", 2)[1]
    offer_ts = eventually(lambda: next((ts for (ch, ts), m in fake_slack.posted.items()
                                        if ch == "C0REVIEW"), None), 5, what="the offer")
    value = action_value(posted.params, "answer_save_faq")
    answer_bot.block_action("answer_save_faq", value, user_id=MEMBER, channel="C0REVIEW",
                            message_ts=offer_ts, response_url=fake_slack.response_url("member"))
    fake_slack.wait_for("response_url")
    stays(lambda: "answer_save_faq" in json.dumps(fake_slack.posted[("C0REVIEW", offer_ts)]["blocks"]), 0.3,
          what="the offer, still there for a reviewer")
    answer_bot.block_action("answer_save_faq", value, user_id=REVIEWER, channel="C0REVIEW",
                            message_ts=offer_ts, response_url=fake_slack.response_url("reviewer"))
    eventually(lambda: "Saved as candidate" in fake_slack.posted[("C0REVIEW", offer_ts)]["text"], 5,
               what="the offer replaced by the confirmation")
    assert "answer_save_faq" not in json.dumps(fake_slack.posted[("C0REVIEW", offer_ts)]["blocks"])
    assert fake_slack.refusals("response_url") == []


def test_threadtune_review_stays_within_its_response_url(bot, fake_slack, db):
    from curation.candidates import add_candidate

    for i in range(8):
        add_candidate(db, "T0FAKE", f"How do I reset token number {i}?", f"Use the portal, step {i}.",
                      origin="manual", sources=[], created_by=REVIEWER)
    bot.command("/threadtune", "review 8", user_id=REVIEWER, channel_id="C0REVIEW",
                response_url=fake_slack.response_url("review"))
    done = eventually(lambda: [c for c in fake_slack.calls_for("response_url") if "Posted" in c.params["text"]],
                      30, what="the summary, once every candidate is posted")
    assert "Posted 8 candidates" in done[0].params["text"]
    assert len([key for key in fake_slack.posted if key[0] == "C0REVIEW"]) == 8
    assert fake_slack.refusals("response_url") == [] and 1 <= fake_slack.count("response_url") <= 5


def test_in_source_thread_mode_a_candidate_whose_thread_is_gone_is_reviewed_in_the_review_channel(
        slack_settings, fake_slack, db):
    """Its support thread was deleted while the bot was away (no event marked the pair stale):
    the post goes to the review channel instead of failing at every `/threadtune review`."""
    from bot.context import BotContext
    from bot.review import post_candidates
    from curation.candidates import add_candidate

    alive = add_candidate(db, "T0FAKE", "How do I reset my VPN token today?", "Use the self-service portal.",
                          origin="deterministic", sources=[{"kind": "message", "channel_id": "C0HELP",
                                                            "ts": "1700000100.000100"}]).id
    gone = add_candidate(db, "T0FAKE", "Where is the printer on floor two?", "Next to the kitchen.",
                         origin="deterministic", sources=[{"kind": "message", "channel_id": "C0HELP",
                                                           "ts": "1700000200.000100"}]).id
    fake_slack.seen.add(("C0HELP", "1700000100.000100"))
    ctx = BotContext(slack_settings.model_copy(update={"review_mode": "source_thread"}))
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url)
    result = post_candidates(ctx, client, "T0FAKE")
    assert result.posted == 2 and result.errors == []
    rows = {r[0]: (r[1], r[2]) for r in db.execute("select id, review_channel, review_ts from candidates")}
    assert rows[alive][0] == "C0HELP" and rows[gone][0] == "C0REVIEW"
    assert fake_slack.refusals("chat.postMessage") == ["cannot_reply_to_message"]


def test_feedback_thanks_reach_someone_who_left_the_channel_by_dm(answer_bot, fake_slack):
    """Slack refuses an ephemeral note to a non-member (user_not_in_channel): the 👍's thanks, like
    every other note to one person, then goes to them as a DM instead of being lost."""
    from tests.serving.conftest import WATCHED

    fake_slack.channels[WATCHED]["members"] = [MEMBER]
    mention(answer_bot, "Who approves expenses?", "1700001100.000100")
    final = final_update(fake_slack)
    answer_bot.block_action("answer_up", action_value(final, "answer_up"), user_id="U0LEFT",
                            channel=WATCHED, message_ts=final["ts"])
    dm = eventually(lambda: [c.params for c in fake_slack.calls_for("chat.postMessage")
                             if c.params["channel"] == "U0LEFT"])
    assert "Thanks for the feedback" in dm[0]["text"]
    assert fake_slack.refusals("chat.postEphemeral") == ["user_not_in_channel"]
