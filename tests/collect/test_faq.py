"""`/faq` and the "Save as FAQ" message shortcut: a modal, then a manual candidate for review."""

from __future__ import annotations

import json

from bot.faq import faq_modal, submitted
from curation.deletion import apply_delete
from curation.messages import upsert_message
from curation.users import upsert_users
from tests.conftest import MEMBER
from tests.fakes.wait import eventually

T = "T0FAKE"


def wait_rows(db, table: str, n: int = 1, timeout: float = 5.0) -> list[dict]:
    return eventually(lambda: len(rows := list(db.query(f"select * from {table}"))) >= n and rows, timeout,
                      what=f"{n} rows in {table}")


def values(question: str, answer: str) -> dict:
    return {"question": {"question": {"type": "plain_text_input", "value": question}},
            "answer": {"answer": {"type": "plain_text_input", "value": answer}}}


def test_faq_command_opens_the_modal(bot, fake_slack):
    assert bot.command("/faq", "", user_id=MEMBER, channel_id="C1").status_code == 200
    call = fake_slack.wait_for("views.open")[0]
    view = call.params["view"] if isinstance(call.params["view"], dict) else json.loads(call.params["view"])
    assert view["callback_id"] == "faq_modal"
    assert {b.get("block_id") for b in view["blocks"]} >= {"question", "answer"}
    assert json.loads(view["private_metadata"])["channel"] == "C1"


def test_submitted_faq_becomes_a_pending_manual_candidate(bot, db, fake_slack):
    meta = json.dumps({"channel": "C1", "sources": []})
    resp = bot.view_submission("faq_modal", values("How do I reset my VPN token?",
                                                   "Open the self-service portal and choose Reset."),
                               user_id=MEMBER, private_metadata=meta)
    assert resp.status_code == 200
    cand = wait_rows(db, "candidates")[0]
    assert (cand["origin"], cand["status"], cand["team_id"], cand["created_by"]) == (
        "manual", "pending", T, MEMBER)
    note = fake_slack.wait_for("chat.postEphemeral")[0].params
    assert note["user"] == MEMBER and f"#{cand['id']}" in note["text"]
    # the same pair again is not stored twice
    bot.view_submission("faq_modal", values("How do I reset my VPN token?",
                                            "Open the self-service portal and choose Reset."),
                        user_id=MEMBER, private_metadata=meta)
    fake_slack.wait_for("chat.postEphemeral", 2)
    assert db["candidates"].count == 1


def test_empty_answer_is_refused_inside_the_modal(bot, db):
    resp = bot.view_submission("faq_modal", values("How do I reset my VPN token?", "  "),
                               user_id=MEMBER, private_metadata="{}")
    assert resp.status_code == 200
    body = resp.json()
    assert body["response_action"] == "errors" and "answer" in body["errors"]
    assert db["candidates"].count == 0


def test_save_as_faq_shortcut_prefills_from_the_stored_thread(bot, db, fake_slack):
    upsert_users(db, T, [{"id": "U2", "name": "ben", "profile": {"display_name": "Ben"}}])
    upsert_message(db, T, "C1", {"ts": "1.1", "user": "U1", "text": "How do I get <@U2> to reset it?"}, "event")
    upsert_message(db, T, "C1", {"ts": "1.2", "user": "U1", "text": "anyone?", "thread_ts": "1.1"}, "event")
    upsert_message(db, T, "C1", {"ts": "1.3", "user": "U2", "text": "Use the portal.", "thread_ts": "1.1"}, "event")
    payload = {"type": "message_action", "callback_id": "save_as_faq",
               "user": {"id": MEMBER, "team_id": T}, "channel": {"id": "C1", "name": "help"},
               "message": {"type": "message", "ts": "1.1", "user": "U1", "text": "How do I …"},
               "response_url": fake_slack.response_url()}
    assert bot.interactive(payload).status_code == 200
    call = fake_slack.wait_for("views.update")[0]
    view = call.params["view"] if isinstance(call.params["view"], dict) else json.loads(call.params["view"])
    fields = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b.get("block_id")}
    assert fields == {"question": "How do I get @Ben to reset it?", "answer": "Use the portal."}
    meta = json.loads(view["private_metadata"])
    bot.view_submission("faq_modal", values(fields["question"], fields["answer"]), user_id=MEMBER,
                        private_metadata=view["private_metadata"])
    cand = wait_rows(db, "candidates")[0]
    sources = {(s["channel_id"], s["ts"]) for s in db.query("select * from candidate_sources")}
    assert sources == {("C1", "1.1"), ("C1", "1.3")} == {(s["channel_id"], s["ts"]) for s in meta["sources"]}
    # deleting the answer in Slack stales the FAQ
    apply_delete(db, T, "C1", "1.3")
    assert db["candidates"].get(cand["id"])["stale"] == 1


def test_shortcut_on_an_unstored_thread_fetches_replies(bot, fake_slack):
    fake_slack.replies[("C7", "2.1")] = [
        {"type": "message", "ts": "2.1", "user": "U1", "text": "Where are the logs?"},
        {"type": "message", "ts": "2.2", "user": "U2", "text": "In /var/log/app.", "thread_ts": "2.1"}]
    payload = {"type": "message_action", "callback_id": "save_as_faq",
               "user": {"id": MEMBER, "team_id": T}, "channel": {"id": "C7"},
               "message": {"type": "message", "ts": "2.2", "thread_ts": "2.1", "user": "U2",
                           "text": "In /var/log/app."}}
    bot.interactive(payload)
    view = fake_slack.wait_for("views.update")[0].params["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    assert [b["element"].get("initial_value") for b in view["blocks"] if b.get("block_id")] == [
        "Where are the logs?", "In /var/log/app."]


def test_modal_builder_respects_slack_limits():
    view = faq_modal("q" * 5000, "a" * 5000, channel="C1",
                     sources=[{"kind": "message", "channel_id": "C1", "ts": f"{i}.1"} for i in range(200)])
    assert len(view["private_metadata"]) <= 3000 and len(view["title"]["text"]) <= 24
    # too long to edit whole: not prefilled (a cut text would be saved back), and the modal says so
    assert all(b["element"].get("initial_value") is None for b in view["blocks"] if b.get("block_id"))
    assert "longer than a form holds" in json.dumps(view["blocks"])
    assert submitted({"state": {"values": {}}})[2].keys() == {"question", "answer"}


def test_the_shortcut_opens_its_modal_at_once_even_when_reading_the_thread_is_slow(bot, fake_slack):
    fake_slack.replies[("C7", "3.1")] = [
        {"type": "message", "ts": "3.1", "user": "U1", "text": "Where are the logs?"},
        {"type": "message", "ts": "3.2", "user": "U2", "text": "In /var/log/app.", "thread_ts": "3.1"}]
    fake_slack.rate_limit("conversations.replies", retry_after=4)  # the trigger_id expires meanwhile
    payload = {"type": "message_action", "callback_id": "save_as_faq",
               "user": {"id": MEMBER, "team_id": T}, "channel": {"id": "C7"},
               "message": {"type": "message", "ts": "3.2", "thread_ts": "3.1", "user": "U2",
                           "text": "In /var/log/app."}}
    bot.interactive(payload)
    fake_slack.wait_for("views.open")
    assert not fake_slack.refusals("views.open")
    view = fake_slack.wait_for("views.update", timeout=15)[0].params["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    assert [b["element"].get("initial_value") for b in view["blocks"] if b.get("block_id")] == [
        "Where are the logs?", "In /var/log/app."]
