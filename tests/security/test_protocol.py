"""What the bot answers Slack for odd requests: Slack counts every non-200 reply toward disabling
event delivery, and a 500 logs a traceback each time. Malformed is 400 (401 when unsigned, before
anything is parsed); what Slack may send and we do not handle is acknowledged with 200."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

import pytest

from tests.conftest import ADMIN


def _nested(depth: int) -> str:
    return '{"type": "event_callback", "event": ' + "[" * depth + "]" * depth + "}"


def test_deeply_nested_json_unsigned_is_401_without_a_traceback(bot, caplog):
    caplog.set_level(logging.ERROR)
    resp = bot.post(_nested(100_000), "application/json", sign=False)
    assert resp.status_code == 401
    assert not [r for r in caplog.records if r.exc_info]


def test_deeply_nested_json_signed_is_400_without_a_traceback(bot, caplog):
    caplog.set_level(logging.ERROR)
    resp = bot.post(_nested(100_000), "application/json")
    assert resp.status_code == 400
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("body", [
    {"type": "event_callback", "team_id": "T0FAKE", "event_id": "Ev1", "event": [1]},
    {"type": "event_callback", "team_id": "T0FAKE", "event_id": "Ev2", "event": {"type": "message", "channel": [1]}},
], ids=["event is a list", "channel is a list"])
def test_signed_events_of_odd_shapes_are_acknowledged_not_500(bot, caplog, body):
    caplog.set_level(logging.ERROR)
    resp = bot.post(json.dumps(body), "application/json")
    assert resp.status_code in (200, 400)
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("payload", [
    {"type": "view_submission", "user": {"id": ADMIN}, "view": {"callback_id": "review_edit_view"}},
    {"type": "block_actions", "user": {"id": ADMIN}, "actions": [{}]},
    {"type": "block_actions", "user": {"id": ADMIN}, "actions": [1]},
    {"type": "shortcut", "user": {"id": ADMIN}, "callback_id": ["x"]},
], ids=["view without type", "empty action", "action not an object", "callback_id a list"])
def test_signed_interactions_of_odd_shapes_are_acknowledged_not_500(bot, caplog, payload):
    caplog.set_level(logging.ERROR)
    resp = bot.interactive(payload)
    assert resp.status_code in (200, 400)
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("body", [
    {"type": "app_rate_limited", "team_id": "T0FAKE", "minute_rate_limited": 1518467820, "api_app_id": "A0FAKE"},
    {"type": "something_new", "team_id": "T0FAKE"},
], ids=["app_rate_limited", "unknown type"])
def test_envelopes_we_do_not_handle_get_200(bot, body):
    assert bot.post(json.dumps(body), "application/json").status_code == 200


def test_repeated_form_fields_are_refused_not_resolved_by_the_last(bot, fake_slack):
    form = urlencode([("command", "/threadtune"), ("text", "help"), ("text", "watch"),
                      ("team_id", "T0FAKE"), ("user_id", ADMIN), ("channel_id", "C0GENERAL"),
                      ("response_url", fake_slack.response_url())])
    assert bot.post(form, "application/x-www-form-urlencoded").status_code == 400
    assert fake_slack.count("response_url") == 0
