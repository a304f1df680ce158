"""Hostile and broken Slack input: each gets a clear answer, the bot stays up, nothing is lost."""

from __future__ import annotations

import json

import pytest

from curation.channels import set_watched
from tests.conftest import ADMIN
from tests.fakes.wait import stays

TEAM = "T0FAKE"


@pytest.fixture
def watched(db):
    set_watched(db, TEAM, "C0HELP", True, by=ADMIN, name="help")
    return "C0HELP"


def stored(db, ts):
    return db.execute("select text from messages where team_id = ? and channel_id = 'C0HELP' and ts = ?",
                      [TEAM, ts]).fetchone()


def still_up(bot, db, watched):
    resp = bot.message(watched, "U0ALICE", "still here?", "1700009999.000100")
    assert resp.status_code == 200
    assert stored(db, "1700009999.000100") is not None


def test_malformed_json_body_is_refused_and_bot_stays_up(bot, db, watched):
    body = '{"type": "event_callback", "event": '
    assert bot.post(body, "application/json").status_code == 400  # signed: ours, but broken
    assert bot.post(body, "application/json", sign=False).status_code == 401  # not signed: not Slack
    forged = {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}
    assert bot.post(body, "application/json", sign=False, headers=forged).status_code == 401
    still_up(bot, db, watched)


def test_oversized_payload_gets_413_before_parsing(bot, db, watched):
    body = json.dumps({"type": "event_callback", "team_id": TEAM, "event_id": "EvBIG",
                       "event": {"type": "message", "channel": watched, "user": "U1", "ts": "1.0",
                                 "text": "x" * 2_000_000}})
    resp = bot.post(body, "application/json")
    assert resp.status_code == 413
    assert stored(db, "1.0") is None
    still_up(bot, db, watched)


def test_unknown_event_type_is_acknowledged_and_stores_nothing(bot, db, watched):
    before = db["messages"].count
    resp = bot.event({"type": "pin_added", "channel_id": watched, "user": "U1", "event_ts": "1.0"})
    assert resp.status_code == 200
    resp = bot.event({"type": "totally_new_event_2030", "weird": [1, 2, {"x": None}]})
    assert resp.status_code == 200
    assert db["messages"].count == before
    still_up(bot, db, watched)


def test_unknown_message_subtype_is_tolerated(bot, db, watched):
    resp = bot.message(watched, "U0ALICE", "a huddle thing", "1700000001.000100",
                       extra={"subtype": "huddle_thread_2031"})
    assert resp.status_code == 200
    still_up(bot, db, watched)


def test_event_with_wrong_field_types_does_not_crash_the_bot(bot, db, watched):
    for event in ({"type": "message", "channel": watched, "user": 42, "ts": None, "text": ["no"]},
                  {"type": "message", "channel": None},
                  {"type": "reaction_added", "item": "not-a-dict", "reaction": 5},
                  {"type": "message", "subtype": "message_changed", "channel": watched, "message": None},
                  {"type": "message", "subtype": "message_deleted", "channel": watched}):
        resp = bot.event(event)
        assert resp.status_code in (200, 400), event
    still_up(bot, db, watched)


def test_100_kb_message_is_stored_whole(bot, db, watched):
    text = ("This is a long log paste. " * 4000)[:100_000]
    resp = bot.message(watched, "U0ALICE", text, "1700000002.000100")
    assert resp.status_code == 200
    assert stored(db, "1700000002.000100")[0] == text


@pytest.mark.parametrize("text", [
    "مرحبا، كيف أعيد تعيين كلمة المرور؟",  # right-to-left
    "reset\u200bthe\u200dVPN\ufeff please",  # zero-width characters
    "\u202eevil override\u202c and 🧑🏽‍💻 emoji ZWJ",  # bidi override + emoji sequence
    "a" + "\u0301" * 500,  # combining marks
    "null\x00byte and \udcff lone surrogate-ish",
])
def test_odd_unicode_is_stored_verbatim_or_safely(bot, db, watched, text):
    ts = f"17000001{abs(hash(text)) % 100:02d}.000100"
    resp = bot.message(watched, "U0ALICE", text, ts)
    assert resp.status_code == 200
    row = stored(db, ts)
    assert row is not None and row[0]
    if "\x00" not in text and "\udcff" not in text:
        assert row[0] == text


def test_retried_event_is_stored_once(bot, db, watched):
    for retry in (None, 1, 2):
        resp = bot.message(watched, "U0ALICE", "retry me", "1700000003.000100", event_id="EvRETRY1",
                           retry_num=retry)
        assert resp.status_code == 200
    stays(lambda: db.execute("select count(*) from messages where ts = '1700000003.000100'").fetchone()[0] == 1,
          0.2, what="one stored message")
