"""`/threadtune watch|unwatch|channels|backfill` and the Web API backfill against the fake Slack."""

from __future__ import annotations

import time

from bot.app import web_client
from bot.backfill import backfill_channel
from curation.channels import is_watched, set_watched
from tests.conftest import ADMIN, MEMBER
from tests.fakes.wait import eventually

T = "T0FAKE"


def ts(offset: int) -> str:
    return f"{int(time.time()) - 3600 + offset}.000100"


def seed(fake, channel: str = "C1", n: int = 5) -> tuple[str, list[str]]:
    """``n`` top-level messages; the first has three replies. Returns (parent ts, reply ts)."""
    fake.add_channel(channel, "help")
    fake.add_user("U1", "ana")
    fake.add_user("U2", "ben")
    msgs = [{"type": "message", "user": "U1", "text": f"question {i}", "ts": ts(i * 10)}
            for i in range(n)]
    parent = msgs[0]["ts"]
    replies = [ts(1), ts(2), ts(3)]
    msgs[0].update(thread_ts=parent, reply_count=3)
    msgs.append({"type": "message", "subtype": "channel_join", "user": "U2", "text": "joined", "ts": ts(4)})
    fake.history[channel] = msgs
    fake.replies[(channel, parent)] = [dict(msgs[0])] + [
        {"type": "message", "user": "U2", "text": f"reply {i}", "ts": r, "thread_ts": parent}
        for i, r in enumerate(replies)]
    return parent, replies


def last_response(fake) -> dict:
    return fake.wait_for("response_url")[-1].params


def test_non_admin_is_refused_with_an_ephemeral_message_naming_admins(bot, db, fake_slack):
    for sub in ("watch", "unwatch", "backfill 7"):
        n = fake_slack.count("response_url")
        bot.command("/threadtune", sub, user_id=MEMBER, channel_id="C1",
                    response_url=fake_slack.response_url())
        reply = fake_slack.wait_for("response_url", n + 1)[-1].params
        assert reply["response_type"] == "ephemeral"
        assert "Only admins" in reply["text"] and f"<@{ADMIN}>" in reply["text"]
    assert not is_watched(db, T, "C1")
    assert db["audit"].count == 0
    assert fake_slack.count("conversations.history") == 0


def test_admin_watches_lists_and_unwatches_with_audit(bot, db, fake_slack):
    fake_slack.add_channel("C1", "help")
    bot.command("/threadtune", "watch", user_id=ADMIN, channel_id="C1",
                response_url=fake_slack.response_url())
    assert "Watching <#C1>" in last_response(fake_slack)["text"]
    assert is_watched(db, T, "C1") and db["channels"].get((T, "C1"))["name"] == "help"
    bot.command("/threadtune", "channels", user_id=MEMBER, channel_id="C9",
                response_url=fake_slack.response_url())
    assert "<#C1>" in fake_slack.wait_for("response_url", 2)[-1].params["text"]
    bot.command("/threadtune", "unwatch <#C1|help>", user_id=ADMIN, channel_id="C9",
                response_url=fake_slack.response_url())
    fake_slack.wait_for("response_url", 3)
    assert not is_watched(db, T, "C1")
    assert [(r["actor"], r["action"], r["target"], r["via"]) for r in db.query(
        "select * from audit order by id")] == [(ADMIN, "watch", "C1", "slack"),
                                                (ADMIN, "unwatch", "C1", "slack")]


def test_backfill_follows_cursors_and_waits_out_a_429(slack_settings, db, fake_slack):
    parent, replies = seed(fake_slack)
    fake_slack.rate_limit("conversations.history", retry_after=1)
    start = time.monotonic()
    result = backfill_channel(db, web_client(slack_settings), T, "C1", days=1, page_size=2)
    assert time.monotonic() - start >= 0.9
    history = fake_slack.calls_for("conversations.history")
    assert len(history) == 1 + 3  # the 429, then pages of 2, 2 and 2
    assert [c.params.get("cursor") for c in history[1:]] == [None, "2", "4"]
    assert len(fake_slack.calls_for("conversations.replies")) == 2  # 4 messages in pages of 2
    assert (result.messages, result.threads, result.skipped) == (8, 1, 1)
    rows = {r["ts"]: r for r in db.query("select * from messages where team_id = ?", [T])}
    assert len(rows) == 8
    assert rows[parent]["thread_ts"] == parent and rows[parent]["reply_count"] == 3
    assert all(rows[r]["thread_ts"] == parent for r in replies)
    assert {r["id"] for r in db.query("select id from users")} == {"U1", "U2"}


def test_backfill_rerun_is_idempotent_and_drops_messages_deleted_meanwhile(slack_settings, db, fake_slack):
    parent, replies = seed(fake_slack)
    client = web_client(slack_settings)
    backfill_channel(db, client, T, "C1", days=1)
    before = {r["ts"]: r["text"] for r in db.query("select ts, text from messages")}
    gone = fake_slack.history["C1"].pop(2)["ts"]
    fake_slack.replies[("C1", parent)].pop(1)
    second = backfill_channel(db, client, T, "C1", days=1)
    after = {r["ts"]: r["text"] for r in db.query("select ts, text from messages")}
    assert set(after) == set(before)
    assert after[gone] is None and after[replies[0]] is None
    assert second.deleted == 2
    assert fake_slack.count("users.info") == 2  # names were cached by the first run


def test_slash_backfill_posts_progress_and_updates_it_in_place(bot, db, fake_slack):
    seed(fake_slack)
    set_watched(db, T, "C1", True, ADMIN)
    bot.command("/threadtune", "backfill 7", user_id=ADMIN, channel_id="C1",
                response_url=fake_slack.response_url())
    posted = fake_slack.wait_for("chat.postMessage")
    assert "Backfilling <#C1>" in posted[0].params["text"]
    fake_slack.wait_for("chat.update")
    final = eventually(lambda: (t := list(fake_slack.posted.values())[0]["text"]).startswith(":white_check_mark:")
                       and t, 10, what="the final status text")
    assert "8 messages, 1 threads" in final
    assert fake_slack.count("chat.postMessage") == 1
    assert db.execute("select count(*) from messages").fetchone()[0] == 8
    assert db.execute("select action, detail from audit").fetchone() == ("backfill", '{"days":7}')


def test_slash_backfill_of_an_unwatched_channel_says_what_to_do(bot, db, fake_slack):
    seed(fake_slack)
    bot.command("/threadtune", "backfill 7", user_id=ADMIN, channel_id="C1",
                response_url=fake_slack.response_url())
    assert "/threadtune watch" in last_response(fake_slack)["text"]
    bot.command("/threadtune", "backfill lots", user_id=ADMIN, channel_id="C1",
                response_url=fake_slack.response_url())
    assert "not a number of days" in fake_slack.wait_for("response_url", 2)[-1].params["text"]
    assert fake_slack.count("conversations.history") == 0


def test_backfill_of_a_channel_slack_refuses_names_the_fix(slack_settings, db, fake_slack):
    import pytest

    from curation.errors import CurationError

    with pytest.raises(CurationError, match="channels:history"):
        backfill_channel(db, web_client(slack_settings), T, "C404", days=1)


def test_watching_a_channel_the_bot_cannot_see_says_to_invite_it(bot, db, fake_slack):
    bot.command("/threadtune", "watch", user_id=ADMIN, channel_id="G0PRIVATE",
                response_url=fake_slack.response_url())
    assert "/invite @threadtune" in last_response(fake_slack)["text"]
    assert is_watched(db, T, "G0PRIVATE")


def test_user_lookup_caches_unknown_users_and_retries_other_failures(slack_settings, db, fake_slack):
    from bot.users import resolve_users

    client = web_client(slack_settings)
    fake_slack.add_user("U1", "ana")
    fake_slack.fail("users.info", error="internal_error")
    assert resolve_users(db, client, T, ["U1", "U404"]) == 1  # U1 failed once, U404 is unknown
    assert db["users"].get((T, "U404"))["name"] == "U404"
    assert resolve_users(db, client, T, ["U1", "U404"]) == 1  # only U1 is asked again
    assert db["users"].get((T, "U1"))["name"] == "ana"


def test_backfill_keeps_a_thread_whose_root_an_app_posted_for_a_person(db, slack_settings, fake_slack):
    fake_slack.add_channel("C1", "help")
    root = {"type": "message", "user": "U1", "bot_id": "B0POLLY", "app_id": "A0POLLY",
            "text": "Poll: which VPN client?", "ts": ts(1), "thread_ts": ts(1), "reply_count": 1}
    other_bot = {"type": "message", "bot_id": "B0DEPLOY", "subtype": "bot_message", "text": "deployed", "ts": ts(5)}
    fake_slack.history["C1"] = [root, other_bot]
    fake_slack.replies[("C1", ts(1))] = [root, {"type": "message", "user": "U2", "text": "WireGuard.",
                                                "ts": ts(2), "thread_ts": ts(1)}]
    result = backfill_channel(db, web_client(slack_settings), T, "C1", days=1)
    stored = dict(db.execute("select ts, text from messages").fetchall())
    assert stored == {ts(1): "Poll: which VPN client?", ts(2): "WireGuard."}
    assert result.skipped == 1  # the deploy bot's message
