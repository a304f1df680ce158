"""Answers as strict Slack takes them (#15): nothing a member or the model writes can ping or mention,
the Retry button survives long and non-English questions, long and empty answers are still valid
messages, and streaming stays within one chat.update budget per workspace."""

from __future__ import annotations

import json

import pytest

from bot.ask import asked_text
from curation.update_budget import PER_MINUTE, RESERVE, UpdateBudget
from tests.conftest import MEMBER, REVIEWER
from tests.fakes.llm import Reply
from tests.serving.conftest import WATCHED, approve_pair, watch
from tests.serving.test_answers_flow import _text, action_value, final_update, mention

@pytest.fixture
def answer_settings(answer_settings):
    """A longer answer timeout than the flow tests': these check payloads, not speed, on shared cores."""
    return answer_settings.model_copy(update={"answer_timeout_s": 30.0})


PINGS = ("<!channel>", "<!here>", "<!everyone>", "<@U0BOSS>", "<!subteam^S0ALL>", "<https://evil.example|")


def no_pings(payload: object) -> bool:
    dumped = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return not any(p in dumped for p in PINGS)


def test_model_output_cannot_ping_or_mention(answer_bot, fake_slack, fake_llm):
    fake_llm.script = ["<!channel> ask <@U0BOSS> or see <https://evil.example|the bank> & <!here>"]
    # the question holds the URL, so the grounding check keeps the sentence that repeats it
    mention(answer_bot, "who knows, is it https://evil.example?", "1700003000.000100")
    final = final_update(fake_slack, timeout=30)
    assert no_pings(final["blocks"]) and no_pings(final["text"])
    assert "&lt;!channel&gt;" in _text(final)  # shown as typed, not as a ping
    assert all(no_pings(c.params.get("blocks") or "") and no_pings(c.params.get("text") or "")
               for c in fake_slack.calls_for("chat.update"))


def test_slash_ask_echo_cannot_ping(answer_bot, fake_slack):
    answer_bot.command("/ask", "<!channel> why is <@U0BOSS> <!here>?", user_id=MEMBER, channel_id=WATCHED)
    echo = fake_slack.wait_for("chat.postMessage")[0].params["text"]
    assert echo.startswith(f"<@{MEMBER}> asked: ") and no_pings(echo)
    assert asked_text(MEMBER, "<!everyone>") == f"<@{MEMBER}> asked: &lt;!everyone&gt;"


def test_citation_labels_and_the_save_as_faq_offer_cannot_ping(answer_bot, fake_slack, fake_llm, db):
    approve_pair(db, "<!channel> how do I reset my password?", "Use the Forgot password link.")
    fake_llm.script = ["Use the Forgot password link. <!subteam^S0ALL>"]
    mention(answer_bot, "<!channel> how do I reset my password?", "1700003100.000100")
    final = final_update(fake_slack, timeout=30)
    assert no_pings(final["blocks"]) and "Based on: <https://fake.slack.com/" in _text(final)
    db.execute("update answers set verified = 0")  # so that a 👍 offers to save it
    answer_bot.block_action("answer_up", action_value(final, "answer_up"), user_id=MEMBER,
                            channel=WATCHED, message_ts=final["ts"])
    offer = [c.params for c in fake_slack.wait_for("chat.postMessage", 2) if c.params["channel"] == "C0REVIEW"]
    assert offer and no_pings(offer[0]["blocks"]) and "&lt;!channel&gt;" in json.dumps(offer[0]["blocks"])


def test_retry_carries_a_long_cjk_question_whole(answer_bot, fake_slack, fake_llm, db):
    question = "私のパスワードをリセットするにはどうすればいいですか" * 30  # 780 CJK characters
    fake_llm.script = [Reply(status=500), Reply(status=500), "パスワードはポータルでリセットできます。"]
    mention(answer_bot, question, "1700003200.000100")
    final = final_update(fake_slack, timeout=30)
    value = action_value(final, "answer_retry")
    assert len(value) <= 2000
    answer_bot.block_action("answer_retry", value, user_id=MEMBER, channel=WATCHED, message_ts=final["ts"])
    again = final_update(fake_slack, n=2, timeout=30)
    assert "ポータル" in again["text"]
    assert fake_llm.chat_requests()[-1]["messages"][-1]["content"].count("パスワード") >= 30


def test_an_answer_too_long_for_one_message_is_cut_with_a_note_and_keeps_its_buttons(
        answer_bot, fake_slack, fake_llm):
    word = "Supercalifragilistic-" * 4  # long words: a few hundred streamed chunks, not thousands
    fake_llm.script = [((word + " ") * 40 + "\n\n") * 7]  # about 23,800 characters
    mention(answer_bot, "Tell me everything", "1700003300.000100")
    final = final_update(fake_slack, timeout=30)
    assert "answer truncated" in _text(final)
    assert not fake_slack.refusals("chat.update")


def test_an_answer_that_streams_whitespace_first_updates_with_valid_blocks(answer_bot, fake_slack, fake_llm):
    fake_llm.script = ["\n\n \n\n \n\n \n\n Fine."]
    fake_llm.token_delay_s = 0.4  # about 1.6 s of blank lines before the text: one update shows them
    mention(answer_bot, "Anything?", "1700003450.000100")
    final = final_update(fake_slack, timeout=30)
    assert "Fine." in _text(final)
    assert len(fake_slack.calls_for("chat.update")) >= 2  # a streaming update, then the answer
    assert not fake_slack.refusals("chat.update")


def test_a_whitespace_answer_is_a_valid_message_that_says_it_is_empty(answer_bot, fake_slack, fake_llm):
    fake_llm.script = ["  \n\t "]
    mention(answer_bot, "Anything?", "1700003400.000100")
    final = final_update(fake_slack, timeout=30)
    assert "empty answer" in _text(final)
    assert not fake_slack.refusals("chat.update")


def test_concurrent_streams_share_one_chat_update_budget_and_every_answer_lands(
        answer_bot_factory, answer_settings, fake_slack, fake_llm, db):
    watch(db)
    fake_slack.rate_limits["chat.update"] = (12, 60.0, "team")  # a workspace's Tier 3, scaled down
    elsewhere = UpdateBudget(answer_settings.db_path)  # the worker, say, in another process
    for _ in range(PER_MINUTE - RESERVE - 2):
        assert elsewhere.take("T0FAKE")  # leaves the bot 2 progress edits and the reserve of 10
    sender = answer_bot_factory(answer_settings.model_copy(update={"answer_concurrency": 4}))
    fake_llm.script = [" ".join(f"w{i}" for i in range(40))] * 4
    fake_llm.token_delay_s = 0.06  # about 2.4 s of streaming each
    for i, user in enumerate((MEMBER, REVIEWER, "U0ADMIN", "U0FOURTH")):
        mention(sender, f"question {i}", f"17000035{i:02d}.000100", user=user)
    finals = [final_update(fake_slack, n=i, timeout=40) for i in range(1, 5)]
    assert len({f["ts"] for f in finals}) == 4
    assert "ratelimited" not in fake_slack.refusals("chat.update")
    assert fake_slack.count("chat.update") <= 10
