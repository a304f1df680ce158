"""The three answer modes in Slack, end to end through the real bolt app, the fake Slack and signed
requests: the verified badge only on an approved answer quoted verbatim, and abstain-and-escalate:
open question in the review channel → an expert's reply becomes a candidate → approval → the asker
is told in their thread → the same question is then answered verbatim."""

from __future__ import annotations

import json

import pytest

from bot import review_blocks as rb
from curation.candidates import get_candidate
from tests.conftest import MEMBER, REVIEWER
from tests.fakes.wait import eventually
from tests.serving.conftest import WATCHED, watch
from tests.serving.test_answers_flow import _text, final_update, mention

TEAM = "T0FAKE"


@pytest.fixture
def bot(answer_bot_factory, answer_settings, db):
    """The answer bot with the calibrated thresholds (the shared fixture lets the model answer all)."""
    watch(db)
    return answer_bot_factory(answer_settings.model_copy(update={"answer_abstain_score": 0.42}))


def posts_in(fake_slack, channel: str, thread_ts: str | None = None) -> list[dict]:
    return [c.params for c in fake_slack.calls_for("chat.postMessage")
            if c.params.get("channel") == channel and c.params.get("thread_ts") == thread_ts]


def test_abstain_escalate_expert_reply_approve_and_the_asker_is_told(bot, fake_slack, fake_llm, db):
    question = "Can I bring my dog to the office on Fridays? <!channel>"
    mention(bot, question, "1700000300.000100")
    body = _text(final_update(fake_slack))
    assert "I don't know this one yet" in body and "I have asked the team" in body
    assert "Verified answer" not in body and "Not verified" not in body
    assert fake_llm.chat_requests() == []  # abstained: the model was not asked to guess

    open_post = eventually(lambda: posts_in(fake_slack, "C0REVIEW"), what="the open question")[0]
    assert "Open question" in open_post["text"] and f"<@{MEMBER}>" in open_post["text"]
    assert "&lt;!channel&gt;" in open_post["text"] and "<!channel>" not in open_post["text"]
    review_ts = next(ts for (ch, ts), m in fake_slack.posted.items() if ch == "C0REVIEW" and m is not None
                     and "Open question" in (m.get("text") or ""))

    # a member's reply is not an expert's answer; the reviewer's is
    thread = {"type": "message", "channel": "C0REVIEW", "thread_ts": review_ts, "channel_type": "channel"}
    bot.event({**thread, "user": MEMBER, "text": "no idea, sorry", "ts": "1700000301.000100"})
    bot.event({**thread, "user": REVIEWER, "text": "Yes, dogs are welcome on Fridays if they are calm.",
               "ts": "1700000302.000100"})
    cid = eventually(lambda: db.execute("select candidate_id from escalations where status = 'answered'")
                     .fetchone(), what="the candidate from the reply")[0]
    c = get_candidate(db, TEAM, cid)
    assert c["origin"] == "escalation" and c["status"] == "pending" and c["answer"].startswith("Yes, dogs")
    assert c["question"] == question
    review_post = eventually(lambda: [p for p in posts_in(fake_slack, "C0REVIEW", review_ts) if p.get("blocks")],
                             what="the candidate's review post in the thread")[0]
    assert "Approve" in json.dumps(review_post["blocks"])

    bot.block_action(rb.ACTION_APPROVE, str(cid), user_id=REVIEWER, channel="C0REVIEW",
                     message_ts=get_candidate(db, TEAM, cid)["review_ts"])
    told = eventually(lambda: [p for p in posts_in(fake_slack, WATCHED, "1700000300.000100")
                               if "now has an answer" in p.get("text", "")], what="the note to the asker")[0]
    assert f"<@{MEMBER}>" in told["text"] and "dogs are welcome on Fridays" in told["text"]
    eventually(lambda: db.execute("select status from escalations").fetchone()[0] == "notified",
               what="the open question marked notified")

    # the next time, the approved answer comes back verbatim, badged, with no generation
    mention(bot, "Can I bring my dog to the office on Fridays?", "1700000400.000100")
    answers = eventually(lambda: [c.params for c in fake_slack.calls_for("chat.update")
                                  if c.params.get("channel") == WATCHED and '"actions"' in _text(c.params)][1:],
                         what="the second answer")
    body = _text(answers[0])
    assert "Verified answer" in body and "dogs are welcome on Fridays if they are calm." in body
    assert fake_llm.chat_requests() == []


def test_without_a_review_channel_the_bot_abstains_and_says_to_ask_the_team(
        answer_bot_factory, answer_settings, fake_slack, fake_llm, db):
    watch(db)
    bot = answer_bot_factory(answer_settings.model_copy(update={"answer_abstain_score": 0.42,
                                                                "review_channel": None}))
    mention(bot, "What is the capital of Australia?", "1700000500.000100")
    body = _text(final_update(fake_slack))
    assert "I don't know this one yet" in body and "ask your team directly" in body
    assert db.execute("select count(*) from escalations").fetchone()[0] == 0


def test_a_generated_answer_whose_every_sentence_is_unsupported_quotes_the_closest_approved_answer(
        answer_bot_factory, answer_settings, fake_slack, fake_llm, db):
    from tests.serving.conftest import approve_pair

    watch(db)
    approve_pair(db, "How do I reset my VPN password?", "Run vpn-reset and follow the link it prints.")
    approve_pair(db, "How many days of leave carry over?", "Up to 30 days carry over to the next year.",
                 permalink="https://fake.slack.com/archives/C0SUPPORT/p1700000000000200")
    bot = answer_bot_factory(answer_settings.model_copy(update={"answer_verify_score": 1.0}))
    fake_llm.token_delay_s = 0.3  # slow enough for streaming updates to go out
    fake_llm.script = ["The VPN password expires after 30 days. Call 555-0100 to reset it."]
    mention(bot, "when does my VPN password expire?", "1700000600.000100")
    final = final_update(fake_slack)
    body = _text(final)
    # the best retrieved approved pair, word for word, labelled with the question it was approved
    # for: neither the verified badge nor the model's "not verified" label, and only its citation
    assert "Closest approved answer" in body and "How do I reset my VPN password?" in body
    assert "Run vpn-reset and follow the link it prints." in body
    assert "Verified answer" not in body and "Not verified" not in body
    assert "p1700000000000100" in body and "p1700000000000200" not in body
    assert "30 days" not in body and "555" not in body
    # nor did the figures show while the answer streamed in
    streamed = [_text(c.params) for c in fake_slack.calls_for("chat.update")]
    assert len(streamed) >= 2 and not any("30 days" in t or "555" in t for t in streamed)
    assert db.execute("select count(*) from escalations").fetchone()[0] == 0
    assert "answer_ask_team" in json.dumps(final["blocks"])


def test_ask_the_team_on_a_closest_answer_opens_a_question_and_the_clicker_is_told_when_it_is_answered(
        answer_bot_factory, answer_settings, fake_slack, fake_llm, db):
    """A closest answer was approved for another question; "Ask the team" turns the question into an
    open question, as an abstention does, and the expert's approved answer reaches the thread."""
    from tests.serving.conftest import approve_pair
    from tests.serving.test_answers_flow import action_value

    watch(db)
    approve_pair(db, "How do I reset my VPN password?", "Run vpn-reset and follow the link it prints.")
    bot = answer_bot_factory(answer_settings.model_copy(update={"answer_verify_score": 1.0}))
    fake_llm.script = ["The VPN password expires after 30 days."]
    mention(bot, "when does my VPN password expire?", "1700001100.000100")
    final = final_update(fake_slack)
    assert "Closest approved answer" in _text(final)
    bot.block_action("answer_ask_team", action_value(final, "answer_ask_team"), user_id=MEMBER,
                     channel=WATCHED, message_ts=final["ts"])
    open_post = eventually(lambda: [p for p in posts_in(fake_slack, "C0REVIEW") if "Open question" in p["text"]],
                           what="the open question")[0]
    assert "when does my VPN password expire?" in open_post["text"]
    note = eventually(lambda: [c.params for c in fake_slack.calls_for("chat.postEphemeral")
                               if "asked the team" in c.params.get("text", "")], what="the note")[0]
    assert note["user"] == MEMBER and note["thread_ts"] == "1700001100.000100"
    cid = _expert_answers(bot, db, fake_slack, "1700001101.000100", "VPN passwords expire every 90 days.")
    bot.block_action(rb.ACTION_APPROVE, str(cid), user_id=REVIEWER, channel="C0REVIEW",
                     message_ts=get_candidate(db, TEAM, cid)["review_ts"])
    told = eventually(lambda: [p for p in posts_in(fake_slack, WATCHED, "1700001100.000100")
                               if "now has an answer" in p.get("text", "")], what="the note to the asker")[0]
    assert f"<@{MEMBER}>" in told["text"] and "expire every 90 days" in told["text"]


def test_a_generated_answer_with_nothing_supported_and_nothing_retrieved_abstains_and_asks_the_team(
        answer_bot_factory, answer_settings, fake_slack, fake_llm, db):
    watch(db)  # no approved pair at all: nothing to quote
    bot = answer_bot_factory(answer_settings.model_copy(update={"answer_verify_score": 1.0}))
    fake_llm.script = ["The VPN password expires after 30 days."]
    mention(bot, "when does my VPN password expire?", "1700000650.000100")
    body = _text(final_update(fake_slack))
    assert "I don't know this one yet" in body and "I have asked the team" in body
    assert "30 days" not in body and "Not verified" not in body and "Closest" not in body
    eventually(lambda: posts_in(fake_slack, "C0REVIEW"), what="the open question")


def _open_question(bot, db, question: str, ts: str, user: str = MEMBER) -> None:
    mention(bot, question, ts, user=user)
    eventually(lambda: db.execute("select 1 from escalations where thread_ts = ?", [ts]).fetchone(),
               what=f"the open question from {ts}")


def _expert_answers(bot, db, fake_slack, ts: str, text: str = "Yes, calm dogs are welcome on Fridays.") -> int:
    """A reviewer answers the open question in its review-channel thread; the candidate's id."""
    review_ts = next(ts for (ch, ts), m in fake_slack.posted.items() if ch == "C0REVIEW" and m is not None
                     and "Open question" in (m.get("text") or ""))
    bot.event({"type": "message", "channel": "C0REVIEW", "thread_ts": review_ts, "channel_type": "channel",
               "user": REVIEWER, "text": text, "ts": ts})
    return eventually(lambda: db.execute("select candidate_id from escalations where status = 'answered'")
                      .fetchone(), what="the candidate")[0]


def test_the_same_open_question_asked_twice_is_one_thread_and_both_askers_are_told(bot, fake_slack, db):
    from tests.conftest import ADMIN

    _open_question(bot, db, "Can I bring my dog to the office on Fridays?", "1700000700.000100")
    _open_question(bot, db, "can I bring my dog into the office on fridays", "1700000800.000100",
                   user=ADMIN)
    tops = [p for p in posts_in(fake_slack, "C0REVIEW") if "Open question" in p["text"]]
    assert len(tops) == 1  # one open question, not two
    review_ts = next(ts for (ch, ts), m in fake_slack.posted.items() if ch == "C0REVIEW" and m is not None
                     and "Open question" in (m.get("text") or ""))
    again = eventually(lambda: posts_in(fake_slack, "C0REVIEW", review_ts), what="the repeat noted")[0]
    assert "Asked again by" in again["text"] and f"<@{ADMIN}>" in again["text"]
    bot.event({"type": "message", "channel": "C0REVIEW", "thread_ts": review_ts, "channel_type": "channel",
               "user": REVIEWER, "text": "Yes, calm dogs are welcome on Fridays.", "ts": "1700000801.000100"})
    cid = eventually(lambda: db.execute("select candidate_id from escalations where status = 'answered'")
                     .fetchone(), what="the candidate")[0]
    assert db.execute("select count(*), count(distinct candidate_id) from escalations where status = 'answered'"
                      ).fetchone() == (2, 1)
    bot.block_action(rb.ACTION_APPROVE, str(cid), user_id=REVIEWER, channel="C0REVIEW",
                     message_ts=get_candidate(db, TEAM, cid)["review_ts"])
    for ts, user in (("1700000700.000100", MEMBER), ("1700000800.000100", ADMIN)):
        told = eventually(lambda ts=ts: [p for p in posts_in(fake_slack, WATCHED, ts)
                                         if "now has an answer" in p.get("text", "")], what=f"note in {ts}")
        assert f"<@{user}>" in told[0]["text"]


def test_an_escalation_approved_from_the_cli_tells_the_asker_in_slack(bot, fake_slack, db, settings):
    from tests.foundation.test_cli import run_cli

    _open_question(bot, db, "Can I bring my dog to the office on Fridays?", "1700000900.000100")
    cid = _expert_answers(bot, db, fake_slack, "1700000901.000100")
    out = run_cli("review", "approve", str(cid), "--as", REVIEWER, data_dir=settings.data_dir,
                  env={"THREADTUNE_TEAM_ID": TEAM, "SLACK_BOT_TOKEN": "xoxb-test",
                       "THREADTUNE_SLACK_API_URL": fake_slack.api_url, "THREADTUNE_REVIEWER_IDS": REVIEWER})
    assert out.returncode == 0, out.stderr
    assert "told 1 of 1 asker(s) in Slack" in out.stdout
    told = [p for p in posts_in(fake_slack, WATCHED, "1700000900.000100") if "now has an answer" in p.get("text", "")]
    assert told and f"<@{MEMBER}>" in told[0]["text"] and "calm dogs are welcome" in told[0]["text"]
    assert db.execute("select status from escalations").fetchone()[0] == "notified"


def test_an_asker_whose_thread_was_deleted_is_told_in_a_dm(bot, fake_slack, db):
    """Slack refuses a reply into a deleted thread (cannot_reply_to_message): the asker still hears
    that their question has an answer, in a DM that quotes it, instead of a line in the bot's log."""
    question = "Can I bring my dog to the office on Fridays? <!here>"
    _open_question(bot, db, question, "1700001000.000100")
    bot.event({"type": "message", "subtype": "message_deleted", "channel": WATCHED,
               "deleted_ts": "1700001000.000100", "ts": "1700001001.000100", "hidden": True})
    cid = _expert_answers(bot, db, fake_slack, "1700001002.000100")
    bot.block_action(rb.ACTION_APPROVE, str(cid), user_id=REVIEWER, channel="C0REVIEW",
                     message_ts=get_candidate(db, TEAM, cid)["review_ts"])
    dm = eventually(lambda: [c.params for c in fake_slack.calls_for("chat.postMessage")
                             if c.params.get("channel") == MEMBER], what="the DM to the asker")[0]
    assert "calm dogs are welcome" in dm["text"] and "bring my dog" in dm["text"]
    assert "&lt;!here&gt;" in dm["text"] and "<!here>" not in dm["text"]
    assert "cannot_reply_to_message" in fake_slack.refusals("chat.postMessage")
    eventually(lambda: db.execute("select status from escalations").fetchone()[0] == "notified",
               what="the open question marked notified")
