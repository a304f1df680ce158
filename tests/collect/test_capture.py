"""Live capture through the real bolt app over signed HTTP: messages, edits, deletes, reactions,
retries, bots, unwatched channels, DMs and unknown events."""

from __future__ import annotations


import pytest

from curation.candidates import add_candidate
from curation.channels import set_watched
from tests.fakes.wait import eventually, stays

T = "T0FAKE"


@pytest.fixture
def watched(db):
    set_watched(db, T, "C1", True, "U0ADMIN", name="help")
    return "C1"


def texts(db, channel: str = "C1") -> dict[str, str | None]:
    return {r["ts"]: r["text"] for r in db.query(
        "select ts, text from messages where team_id = ? and channel_id = ? order by ts", [T, channel])}


def test_message_in_watched_channel_is_stored_and_ack_is_200(bot, db, watched):
    resp = bot.message("C1", "U1", "How do I reset my VPN token?", "1700000001.000100")
    assert resp.status_code == 200
    assert texts(db) == {"1700000001.000100": "How do I reset my VPN token?"}
    stored = db["messages"].get((T, "C1", "1700000001.000100"))
    assert stored["user_id"] == "U1" and stored["source"] == "event" and stored["thread_ts"] is None


def test_thread_reply_links_to_its_parent(bot, db, watched):
    bot.message("C1", "U1", "Question?", "1700000001.000100")
    bot.message("C1", "U2", "Answer.", "1700000002.000100", thread_ts="1700000001.000100")
    parent = db["messages"].get((T, "C1", "1700000001.000100"))
    assert parent["thread_ts"] == parent["ts"] and parent["reply_count"] == 1
    assert db["messages"].get((T, "C1", "1700000002.000100"))["thread_ts"] == "1700000001.000100"


def test_edit_changes_the_stored_text(bot, db, watched):
    bot.message("C1", "U1", "reset via portal", "1700000001.000100")
    resp = bot.event({"type": "message", "subtype": "message_changed", "channel": "C1",
                      "channel_type": "channel", "ts": "1700000009.000100",
                      "message": {"type": "message", "user": "U1", "text": "reset via the self-service portal",
                                  "ts": "1700000001.000100", "edited": {"user": "U1", "ts": "1700000009.000000"}},
                      "previous_message": {"type": "message", "user": "U1", "text": "reset via portal",
                                           "ts": "1700000001.000100"}})
    assert resp.status_code == 200
    assert texts(db) == {"1700000001.000100": "reset via the self-service portal"}


def test_delete_removes_text_and_stales_derived_candidates(bot, db, watched):
    bot.message("C1", "U1", "my token is hunter2", "1700000001.000100")
    added = add_candidate(db, T, "What is the token format?", "Tokens look like hunter2.",
                          origin="thread",
                          sources=[{"kind": "message", "channel_id": "C1", "ts": "1700000001.000100"}])
    resp = bot.event({"type": "message", "subtype": "message_deleted", "channel": "C1",
                      "channel_type": "channel", "ts": "1700000010.000100",
                      "deleted_ts": "1700000001.000100", "hidden": True,
                      "previous_message": {"type": "message", "user": "U1", "text": "my token is hunter2",
                                           "ts": "1700000001.000100"}})
    assert resp.status_code == 200
    stored = db["messages"].get((T, "C1", "1700000001.000100"))
    assert stored["deleted"] == 1 and not stored["text"]
    assert db.execute("select count(*) from messages_fts where messages_fts match 'hunter2'").fetchone()[0] == 0
    assert db["candidates"].get(added.id)["stale"] == 1
    assert db.execute("select action from reviews where candidate_id = ?", [added.id]).fetchone()[0] == "stale"


def test_delete_is_honoured_in_a_channel_no_longer_watched(bot, db, watched):
    bot.message("C1", "U1", "private detail", "1700000001.000100")
    set_watched(db, T, "C1", False, "U0ADMIN")
    bot.event({"type": "message", "subtype": "message_deleted", "channel": "C1",
               "deleted_ts": "1700000001.000100", "ts": "1700000011.000100"})
    assert texts(db) == {"1700000001.000100": None}


def test_retried_event_is_stored_once(bot, db, watched):
    event = {"type": "message", "channel": "C1", "user": "U1", "text": "once", "ts": "1700000001.000100",
             "channel_type": "channel"}
    for retry in (None, 1, 2):
        assert bot.event(event, event_id="EvRETRY1", retry_num=retry).status_code == 200
    assert db["messages"].count == 1
    # an edit delivered, then its retry after a later edit, must not roll the text back
    def edit(text: str, edited: str, event_id: str) -> None:
        bot.event({"type": "message", "subtype": "message_changed", "channel": "C1",
                   "message": {"user": "U1", "text": text, "ts": "1700000001.000100",
                               "edited": {"ts": edited}}}, event_id=event_id)
    edit("second", "1700000005.000000", "EvEDIT2")
    edit("third", "1700000006.000000", "EvEDIT3")
    edit("second", "1700000005.000000", "EvEDIT2")
    assert texts(db) == {"1700000001.000100": "third"}


def test_bot_and_own_messages_are_ignored(bot, db, watched):
    bot.message("C1", "U9", "beep", "1700000001.000100", extra={"bot_id": "B0OTHER"})
    bot.event({"type": "message", "subtype": "bot_message", "channel": "C1", "bot_id": "B0OTHER",
               "text": "zap", "ts": "1700000002.000100"})
    bot.message("C1", "UBOT", "my own answer", "1700000003.000100", extra={"bot_id": "BBOT"})
    assert db["messages"].count == 0


def test_unwatched_channel_is_ignored(bot, db, watched):
    assert bot.message("C2", "U1", "elsewhere", "1700000001.000100").status_code == 200
    assert db["messages"].count == 0


def test_dm_is_kept_only_when_configured(bot, db):
    bot.message("D1", "U1", "secret dm", "1700000001.000100", extra={"channel_type": "im"})
    assert db["messages"].count == 0


def test_dm_is_kept_with_keep_dms(slack_settings, db):
    from bot.app import build_app
    from bot.server import running
    from tests.conftest import SIGNING_SECRET
    from tests.fakes.signed import SlackSender

    app = build_app(slack_settings.model_copy(update={"keep_dms": True}))
    with running(app) as url:
        SlackSender(url, SIGNING_SECRET).message("D1", "U1", "dm kept", "1700000001.000100",
                                                  extra={"channel_type": "im"})
    assert texts(db, "D1") == {"1700000001.000100": "dm kept"}
    assert db["channels"].get((T, "D1"))["is_im"] == 1


def test_unknown_event_type_gets_200_and_stores_nothing(bot, db, watched):
    resp = bot.event({"type": "workflow_step_frobnicated", "channel": "C1", "ts": "1.1"})
    assert resp.status_code == 200
    resp = bot.event({"type": "message", "subtype": "brand_new_subtype", "channel": "C1",
                      "user": "U1", "text": "still conversation", "ts": "1700000001.000100"})
    assert resp.status_code == 200
    resp = bot.event({"type": "message", "subtype": "channel_join", "channel": "C1", "user": "U1",
                      "text": "<@U1> has joined", "ts": "1700000002.000100"})
    assert resp.status_code == 200
    assert texts(db) == {"1700000001.000100": "still conversation"}


def test_answered_reaction_marks_the_reply(bot, db, watched):
    bot.message("C1", "U2", "try restarting", "1700000002.000100", thread_ts="1700000001.000100")
    item = {"type": "message", "channel": "C1", "ts": "1700000002.000100"}
    bot.event({"type": "reaction_added", "user": "U1", "reaction": "white_check_mark", "item": item,
               "item_user": "U2", "event_ts": "1700000003.000100"})
    assert db["messages"].get((T, "C1", "1700000002.000100"))["answered"] == 1
    bot.event({"type": "reaction_added", "user": "U1", "reaction": "tada", "item": item})
    bot.event({"type": "reaction_removed", "user": "U1", "reaction": "white_check_mark", "item": item})
    assert db["messages"].get((T, "C1", "1700000002.000100"))["answered"] == 0


def test_teams_are_kept_apart(bot, db, watched):
    bot.message("C1", "U1", "other workspace", "1700000001.000100", team_id="T0OTHER")
    assert db["messages"].count == 0  # C1 is watched in T0FAKE only
    set_watched(db, "T0OTHER", "C1", True, "U0ADMIN")
    bot.message("C1", "U1", "other workspace", "1700000001.000100", team_id="T0OTHER")
    bot.message("C1", "U1", "ours", "1700000001.000100")
    assert {(r["team_id"], r["text"]) for r in db.query("select team_id, text from messages")} == {
        ("T0OTHER", "other workspace"), (T, "ours")}


def test_author_display_name_is_resolved_and_cached(bot, db, watched, fake_slack):
    fake_slack.add_user("U1", "ana", "Ana Lima")
    bot.message("C1", "U1", "first", "1700000001.000100")
    bot.message("C1", "U1", "second", "1700000002.000100")
    fake_slack.wait_for("users.info")
    eventually(lambda: db["users"].count, 5, what="the user row")
    from curation.users import display_name
    assert display_name(db, T, "U1") == "ana"
    stays(lambda: fake_slack.count("users.info") == 1, 0.2, what="one users.info call")


def test_large_and_odd_unicode_message_is_stored_intact(bot, db, watched):
    text = "\u202eمرحبا\u200b zero\u200dwidth 🧵 " + "x" * 100_000
    assert bot.message("C1", "U1", text, "1700000001.000100").status_code == 200
    assert texts(db)["1700000001.000100"] == text


# --- hostile payloads -------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                    st.lists(st.text(max_size=4), max_size=2),
                    st.dictionaries(st.sampled_from(["ts", "text", "user", "type", "edited"]),
                                    st.one_of(st.text(max_size=8), st.integers()), max_size=3))
_events = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "reaction_added", "reaction_removed"])},
    optional={k: _values for k in ("subtype", "channel", "user", "text", "ts", "thread_ts",
                                   "message", "previous_message", "deleted_ts", "item",
                                   "reaction", "bot_id", "channel_type", "edited")})


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=_events, team=st.one_of(st.just(T), st.none(), st.integers()))
def test_malformed_events_never_crash_capture(settings, db, event, team):
    from bot.capture import handle_event
    from bot.context import BotContext

    set_watched(db, T, "C1", True, "U0ADMIN")
    ctx = BotContext(settings)
    try:
        handle_event(ctx, {"team_id": team, "event_id": None, "event": event})
    finally:
        ctx.db().close()


def test_malformed_payloads_are_acknowledged_and_store_nothing(bot, db, watched):
    # bot/validation.py drops these before capture sees them, with a 200 so Slack does not retry.
    for event in ({"type": "message", "channel": ["C1"], "ts": {"x": 1}},
                  {"type": "message", "subtype": "message_changed", "channel": "C1", "message": "oops"},
                  {"type": "reaction_added", "item": "C1"}):
        assert bot.event(event).status_code == 200
    resp = bot.post('{"type": "event_callback", "event": ', "application/json")
    assert resp.status_code in (200, 400)
    assert db["messages"].count == 0


def test_url_verification_challenge_is_answered(bot):
    import json as _json

    resp = bot.post(_json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                                 "type": "url_verification"}), "application/json")
    assert resp.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in resp.text


def test_reply_to_a_thread_begun_before_watching_fetches_its_parent(bot, db, watched, fake_slack):
    parent = {"type": "message", "user": "U1", "text": "Old question?", "ts": "1700000001.000100",
              "thread_ts": "1700000001.000100", "reply_count": 1}
    fake_slack.replies[("C1", "1700000001.000100")] = [parent]
    bot.message("C1", "U2", "Late answer.", "1700000002.000100", thread_ts="1700000001.000100")
    fake_slack.wait_for("conversations.replies")
    eventually(lambda: "1700000001.000100" in texts(db), 5, what="the fetched parent")
    assert texts(db) == {"1700000001.000100": "Old question?", "1700000002.000100": "Late answer."}
    from curation.status import status_counts
    assert status_counts(db, T)["threads"] == 1
    bot.message("C1", "U2", "Another.", "1700000003.000100", thread_ts="1700000001.000100")
    stays(lambda: fake_slack.count("conversations.replies") == 1, 0.2, what="one conversations.replies call")


POLL = {"type": "message", "user": "U1", "bot_id": "B0POLLY", "app_id": "A0POLLY",
        "text": "Poll: which VPN client should we use?", "ts": "1700000011.000100",
        "thread_ts": "1700000011.000100", "reply_count": 1}


def test_a_thread_whose_root_an_app_posted_for_a_person_is_stored_whole(bot, db, watched, fake_slack):
    fake_slack.replies[("C1", POLL["ts"])] = [POLL]
    bot.message("C1", "U2", "WireGuard, it reconnects by itself.", "1700000012.000100", thread_ts=POLL["ts"])
    eventually(lambda: POLL["ts"] in texts(db), 5, what="the app's root")
    assert texts(db)[POLL["ts"]] == POLL["text"]
    bot.message("C1", "UBOT", "our own bot's reply", "1700000013.000100", thread_ts=POLL["ts"],
                extra={"bot_id": "BBOT"})
    stays(lambda: "1700000013.000100" not in texts(db), 0.3, what="the bot's own reply unstored")
