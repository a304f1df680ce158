"""Tenancy from the envelope (#16): the workspace a request acts in is the envelope's (``team_id``
of events and slash commands, ``team.id`` of interactive payloads), never an inner field; roles
hold per workspace."""

from __future__ import annotations

import json
from typing import Any

from curation.candidates import add_candidate
from curation.channels import set_watched
from curation.store import now
from tests.conftest import ADMIN, MEMBER, REVIEWER
from tests.fakes.wait import eventually, stays
from tests.serving.conftest import WATCHED
from tests.serving.conftest import (answer_bot, answer_bot_factory, answer_settings,  # noqa: F401
                                    fake_llm)  # fixtures of the answer flow

T, OTHER = "T0FAKE", "T0OTHER"
INNER_KEYS = ("team_id", "team", "user_team", "source_team", "app_installed_team_id")


def poisoned(value: Any, top: bool = True) -> Any:
    """``value`` with the second team's id in every inner field that could name a workspace."""
    if isinstance(value, dict):
        out = {k: poisoned(v, False) for k, v in value.items()}
        if not top:
            out.update({k: OTHER for k in INNER_KEYS if k in out or k in ("team_id", "user_team")})
        return out
    if isinstance(value, list):
        return [poisoned(v, False) for v in value]
    return value


class PoisonedSender:
    """Sends what the signed sender would, with the inner fields poisoned."""

    def __init__(self, bot):
        self.bot = bot

    def event(self, event: dict, **kw):
        return self.bot.event(poisoned(event, top=False), **kw)

    def interactive(self, payload: dict):
        payload = poisoned(payload)
        payload["team"] = {"id": T, "domain": "fake"}  # the envelope
        return self.bot.interactive(payload)


def test_inner_team_fields_never_move_a_request_to_another_workspace(bot, fake_slack, db):
    set_watched(db, T, "C1", True, ADMIN)
    set_watched(db, OTHER, "C1", True, ADMIN)
    sender = PoisonedSender(bot)
    # a message and a reaction (Events API)
    sender.event({"type": "message", "channel": "C1", "user": "U1", "text": "How do I reset the VPN?",
                  "ts": "1700000001.000100", "channel_type": "channel", "event_ts": "1700000001.000100"})
    sender.event({"type": "reaction_added", "user": "U2", "reaction": "white_check_mark",
                  "item": {"type": "message", "channel": "C1", "ts": "1700000001.000100"},
                  "event_ts": "1700000002.000100"})
    # the FAQ modal (view_submission) with a private_metadata naming the other team too
    sender.interactive({
        "type": "view_submission", "user": {"id": MEMBER, "username": "m"}, "trigger_id": "t",
        "view": {"id": "V1", "type": "modal", "callback_id": "faq_modal", "hash": "h",
                 "private_metadata": json.dumps({"channel": "C1", "sources": [], "team": OTHER}),
                 "state": {"values": {
                     "question": {"question": {"type": "plain_text_input", "value": "Where is the wiki?"}},
                     "answer": {"answer": {"type": "plain_text_input", "value": "At wiki.example.com."}}}}}})
    assert eventually(lambda: db["candidates"].count == 1)
    # a review button (block_actions)
    cid = db.execute("select id from candidates").fetchone()[0]
    sender.interactive({
        "type": "block_actions", "user": {"id": REVIEWER, "username": "r"}, "trigger_id": "t2",
        "channel": {"id": "C0REVIEW", "name": "review"}, "response_url": fake_slack.response_url("a"),
        "container": {"type": "message", "message_ts": "1700000003.000100", "channel_id": "C0REVIEW"},
        "message": {"ts": "1700000003.000100", "text": "", "type": "message"},
        "actions": [{"action_id": "review_approve", "block_id": "b", "value": str(cid), "type": "button",
                     "action_ts": "1"}]})
    assert eventually(lambda: db["candidates"].get(cid)["status"] == "approved")
    # a 👎 on an answer (block_actions) opens the correction modal for the answer of this team
    db["answers"].insert({"id": 1, "team_id": T, "channel_id": "C1", "thread_ts": "1700000001.000100",
                          "ts": "1700000005.000100", "user_id": MEMBER, "question": "q?", "answer": "a.",
                          "model": "base", "sources": "[]", "verified": 0, "created_at": now()})
    sender.interactive({
        "type": "block_actions", "user": {"id": MEMBER, "username": "m"}, "trigger_id": "t3",
        "channel": {"id": "C1", "name": "help"}, "response_url": fake_slack.response_url("d"),
        "container": {"type": "message", "message_ts": "1700000005.000100", "channel_id": "C1"},
        "message": {"ts": "1700000005.000100", "text": "", "type": "message"},
        "actions": [{"action_id": "answer_down", "block_id": "b", "value": "1", "type": "button",
                     "action_ts": "1"}]})
    fake_slack.wait_for("views.open")
    assert eventually(lambda: db.execute("select rating from feedback").fetchone() == (-1,))

    teams = {t for table in ("messages", "candidates", "reviews", "feedback", "audit")
             for (t,) in db.execute(f"select distinct team_id from {table}") if t} | {
        t for (t,) in db.execute("select distinct a.team_id from feedback f join answers a on a.id = f.answer_id")}
    assert teams == {T}
    assert db.execute("select answered from messages").fetchone() == (1,)


def test_a_reviewer_of_one_workspace_is_nobody_in_another(bot, db):
    cid = add_candidate(db, OTHER, "How do I reset the VPN token?", "Use the self-service portal.",
                        origin="manual").id
    resp = bot.interactive({
        "type": "view_submission", "team": {"id": OTHER, "domain": "other"},
        "user": {"id": REVIEWER, "username": "r", "team_id": OTHER}, "trigger_id": "t",
        "view": {"id": "V2", "type": "modal", "callback_id": "review_reject_view", "hash": "h",
                 "private_metadata": json.dumps({"candidate_id": cid}),
                 "state": {"values": {"reason": {"value": {"type": "plain_text_input", "value": "no"}}}}}})
    assert resp.status_code == 200 and resp.json()["response_action"] == "errors"
    assert "Only reviewers" in json.dumps(resp.json())
    assert db["candidates"].get(cid)["status"] == "pending"


def test_an_interactive_payload_without_an_envelope_team_is_dropped(bot, db):
    add_candidate(db, OTHER, "How do I reset the VPN token?", "Use the self-service portal.", origin="manual")
    resp = bot.interactive({
        "type": "view_submission", "team": None, "user": {"id": MEMBER, "username": "m", "team_id": OTHER},
        "trigger_id": "t", "view": {"id": "V3", "type": "modal", "callback_id": "faq_modal", "hash": "h",
                                    "team_id": OTHER, "private_metadata": "{}", "state": {"values": {
                                        "question": {"question": {"type": "plain_text_input", "value": "Q here?"}},
                                        "answer": {"answer": {"type": "plain_text_input", "value": "An answer."}}}}}})
    assert resp.status_code == 200
    stays(lambda: db["candidates"].count == 1, 0.5)


def test_a_retry_button_naming_another_team_asks_in_the_envelope_team(answer_bot, fake_slack, fake_llm, db):
    fake_llm.script = ["Restart the VPN client."]
    fake_slack.posted[(WATCHED, "1700000101.000100")] = {"text": "error", "blocks": []}  # the error post
    value = json.dumps({"c": WATCHED, "t": "1700000100.000100", "u": MEMBER, "q": "Why is the VPN slow?",
                        "team": OTHER})
    answer_bot.block_action("answer_retry", value, user_id=MEMBER, channel=WATCHED,
                            message_ts="1700000101.000100")
    assert eventually(lambda: db.execute("select team_id from answers").fetchall() == [(T,)], 30)
