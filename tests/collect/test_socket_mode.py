"""Socket Mode end to end: the real SocketModeHandler against a loopback WebSocket server that
answers as Slack does (``apps.connections.open``, ``hello``, envelopes, acks by ``envelope_id``)."""

from __future__ import annotations

import time

import pytest

from curation.channels import set_watched
from tests.conftest import ADMIN
from tests.fakes.slack import APP_TOKEN
from tests.fakes.wait import eventually, stays

T = "T0FAKE"


@pytest.fixture
def socket_bot(slack_settings, fake_slack, db):
    """The bot connected in Socket Mode to the fake; yields the fake socket server."""
    from bot.app import build_app
    from bot.server import socket_mode
    from tests.fakes.socket_mode import FakeSocketMode

    server = FakeSocketMode().start()
    fake_slack.socket_url = server.url
    app = build_app(slack_settings.model_copy(update={"slack_app_token": APP_TOKEN,
                                                      "slack_signing_secret": None}))
    with socket_mode(app, APP_TOKEN):
        server.wait_connected()
        yield server
    server.stop()


def _message(text: str, ts: str, event_id: str) -> dict:
    return {"type": "event_callback", "team_id": T, "api_app_id": "A0FAKE", "event_id": event_id,
            "event_time": int(time.time()),
            "event": {"type": "message", "channel": "C0HELP", "user": "U1", "text": text, "ts": ts,
                      "channel_type": "channel"}}


def test_events_are_acked_by_envelope_id_and_stored_once_when_redelivered(socket_bot, fake_slack, db):
    set_watched(db, T, "C0HELP", True, by=ADMIN)
    body = _message("How do I reset the VPN?", "1700000001.000100", "Ev0001")
    first = socket_bot.send("events_api", body)
    assert socket_bot.wait_ack(first)["envelope_id"] == first
    again = socket_bot.send("events_api", body, retry_attempt=1)  # Slack redelivers
    socket_bot.wait_ack(again)
    eventually(lambda: db["messages"].count == 1)
    stays(lambda: db["messages"].count == 1, 0.3)
    assert db.execute("select text from messages").fetchall() == [("How do I reset the VPN?",)]


def test_slash_command_is_acked_and_answered_at_its_response_url(socket_bot, fake_slack):
    payload = {"token": "legacy", "team_id": T, "team_domain": "fake", "channel_id": "C0GENERAL",
               "channel_name": "general", "user_id": ADMIN, "user_name": "admin", "command": "/threadtune",
               "text": "help", "api_app_id": "A0FAKE", "response_url": fake_slack.response_url("sm"),
               "trigger_id": fake_slack.trigger_id()}
    socket_bot.wait_ack(socket_bot.send("slash_commands", payload))
    assert "threadtune" in fake_slack.wait_for("response_url")[0].params["text"]


def test_interactive_shortcut_is_acked_and_opens_its_modal(socket_bot, fake_slack):
    payload = {"type": "message_action", "callback_id": "save_as_faq", "trigger_id": fake_slack.trigger_id(),
               "team": {"id": T, "domain": "fake"}, "user": {"id": ADMIN, "team_id": T},
               "channel": {"id": "C0HELP", "name": "help"}, "api_app_id": "A0FAKE", "token": "legacy",
               "message": {"type": "message", "user": "U1", "ts": "1700000001.000100", "text": "How do I X?"},
               "response_url": fake_slack.response_url("sc")}
    socket_bot.wait_ack(socket_bot.send("interactive", payload))
    fake_slack.wait_for("views.open")
    assert not fake_slack.refusals("views.open")
    eventually(lambda: any("How do I X?" in str(v) for v in fake_slack.views.values()))


def test_after_the_socket_drops_the_bot_reconnects_and_keeps_working(socket_bot, fake_slack, db):
    set_watched(db, T, "C0HELP", True, by=ADMIN)
    socket_bot.drop()
    socket_bot.wait_connected(hellos=2, timeout=30)
    assert fake_slack.count("apps.connections.open") >= 2
    envelope = socket_bot.send("events_api", _message("after the drop", "1700000002.000100", "Ev0002"))
    socket_bot.wait_ack(envelope)
    eventually(lambda: db["messages"].count == 1)
