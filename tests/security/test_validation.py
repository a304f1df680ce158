"""Payload validation (HTTP and Socket Mode), with property-based tests over arbitrary payloads."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from slack_bolt.request import BoltRequest

from bot.validation import problems

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_problems_never_raises_on_any_json(value):
    assert isinstance(problems(value), list)


@given(st.dictionaries(st.sampled_from(["type", "channel", "user", "ts", "text", "item", "message",
                                        "thread_ts", "subtype"]), json_values, max_size=9))
def test_event_shapes_never_raise(event):
    body = {"type": "event_callback", "team_id": "T1", "event_id": "Ev1", "event": event}
    assert isinstance(problems(body), list)


def test_real_payload_examples_are_valid(shared_data):
    vectors = shared_data / "slack-test-vectors"
    for name in ("bolt_app_mention_event.json", "bolt_message_thread_broadcast_event.json",
                 "doc_app_mention_event.fixed.json"):
        body = json.loads((vectors / name).read_text())
        if "event" not in body:
            body = {"type": "event_callback", "team_id": "T1", "event_id": "Ev1", "event": body}
        assert problems(body) == [], name
    for name in ("bolt_block_actions_payload.json", "doc_block_actions_payload.json"):
        assert problems(json.loads((vectors / name).read_text())) == [], name


def test_malformed_shapes_are_named():
    assert problems([]) == ["body is not an object"]
    assert "event_callback without an event object" in problems({"type": "event_callback", "event": "x"})
    assert "event.user is not a string" in problems(
        {"type": "event_callback", "event": {"type": "message", "user": 5}})
    assert "block_actions without user.id" in problems({"type": "block_actions", "actions": []})


def socket_request(body: dict) -> BoltRequest:
    return BoltRequest(body=body, mode="socket_mode")


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.dictionaries(st.sampled_from(["type", "channel", "user", "ts", "text", "item"]),
                             json_values, max_size=6))
def test_socket_mode_app_survives_arbitrary_events(socket_app, db, event):
    body = {"type": "event_callback", "team_id": "T0FAKE", "event_id": "EvX", "event": event}
    try:
        req = socket_request(body)
    except (TypeError, ValueError, AttributeError, KeyError):
        return  # bolt's own parser refused it: nothing reached our listeners
    resp = socket_app.dispatch(req)
    assert resp.status in (200, 404)
    assert db["messages"].count == 0 or all(
        isinstance(r[0], str) for r in db.execute("select ts from messages"))


def test_socket_mode_drops_malformed_and_keeps_valid(socket_app, db):
    from curation.channels import set_watched

    set_watched(db, "T0FAKE", "C1", True, by="U0ADMIN")
    bad = {"type": "event_callback", "team_id": "T0FAKE", "event_id": "Ev1",
           "event": {"type": "message", "channel": "C1", "user": ["x"], "ts": "1.0", "text": "bad"}}
    good = {"type": "event_callback", "team_id": "T0FAKE", "event_id": "Ev2",
            "event": {"type": "message", "channel": "C1", "user": "U1", "ts": "2.0", "text": "good",
                      "channel_type": "channel"}}
    try:
        socket_app.dispatch(socket_request(bad))
    except (TypeError, ValueError, AttributeError, KeyError):
        pass
    assert socket_app.dispatch(socket_request(good)).status == 200
    assert [r[0] for r in db.execute("select text from messages")] == ["good"]
