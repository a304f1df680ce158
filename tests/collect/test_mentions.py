"""Channel and user references in /threadtune text, in both forms: escaped (``should_escape: true``,
what the manifest asks for) and as typed (``false``: an app made from an older manifest)."""

from __future__ import annotations

import time

import pytest

from curation.channels import is_watched
from tests.conftest import ADMIN

T = "T0FAKE"


def ts(offset: int) -> str:
    return f"{int(time.time()) - 3600 + offset}.000100"


def reply(fake) -> str:  # noqa: ANN001
    return fake.wait_for("response_url")[-1].params["text"]


@pytest.mark.parametrize("escape", [False, True], ids=["as typed", "escaped"])
def test_watch_of_a_named_channel_typed_elsewhere_watches_that_channel(bot, db, fake_slack, escape):
    bot.escape = escape
    bot.command("/threadtune", "watch #support", user_id=ADMIN, channel_id="C0GENERAL",
                response_url=fake_slack.response_url())
    assert "Watching <#C0SUPPORT>" in reply(fake_slack)
    assert is_watched(db, T, "C0SUPPORT") and not is_watched(db, T, "C0GENERAL")


def test_plain_names_are_looked_up_once_then_come_from_the_store(bot, db, fake_slack):
    bot.escape = False
    for n, sub in enumerate(("watch #support", "unwatch #support", "watch #support"), start=1):
        bot.command("/threadtune", sub, user_id=ADMIN, channel_id="C0GENERAL",
                    response_url=fake_slack.response_url())
        fake_slack.wait_for("response_url", n)
    assert fake_slack.count("conversations.list") == 1
    assert is_watched(db, T, "C0SUPPORT")


def test_an_unknown_channel_name_is_an_error_and_nothing_is_watched(bot, db, fake_slack):
    bot.escape = False
    bot.command("/threadtune", "watch #no-such-channel", user_id=ADMIN, channel_id="C0GENERAL",
                response_url=fake_slack.response_url())
    assert "no channel named #no-such-channel" in reply(fake_slack)
    assert db.execute("select count(*) from channels where watched = 1").fetchone()[0] == 0


@pytest.mark.parametrize("escape", [False, True], ids=["as typed", "escaped"])
def test_backfill_of_a_named_channel_typed_elsewhere_backfills_that_channel(bot, db, fake_slack, escape):
    bot.escape = escape
    fake_slack.history["C0SUPPORT"] = [{"type": "message", "user": "U1", "text": "hello", "ts": ts(1)}]
    bot.command("/threadtune", "watch #support", user_id=ADMIN, channel_id="C0GENERAL",
                response_url=fake_slack.response_url())
    fake_slack.wait_for("response_url")
    bot.command("/threadtune", "backfill 30 #support", user_id=ADMIN, channel_id="C0GENERAL",
                response_url=fake_slack.response_url())
    done = fake_slack.wait_for("chat.update")[-1].params
    assert "Backfilled <#C0SUPPORT>" in done["text"] and done["channel"] == "C0GENERAL"
    assert [c.params["channel"] for c in fake_slack.calls_for("conversations.history")] == ["C0SUPPORT"]
    assert db.execute("select channel_id from messages").fetchall() == [("C0SUPPORT",)]


@pytest.mark.parametrize("escape", [False, True], ids=["as typed", "escaped"])
def test_forget_of_a_named_user_forgets_them(bot, db, fake_slack, escape):
    bot.escape = escape
    fake_slack.add_user("U0ANA", "ana")
    db["messages"].insert({"team_id": T, "channel_id": "C0SUPPORT", "ts": ts(1), "thread_ts": ts(1),
                           "user_id": "U0ANA", "text": "my VPN broke", "source": "event"})
    bot.command("/threadtune", "forget @ana", user_id=ADMIN, response_url=fake_slack.response_url())
    assert "1 messages removed" in reply(fake_slack)
    assert db.execute("select text, deleted from messages").fetchall() == [(None, 1)]


def test_forget_of_an_unknown_name_says_so_and_forgets_nothing(bot, db, fake_slack):
    bot.escape = False
    db["messages"].insert({"team_id": T, "channel_id": "C0SUPPORT", "ts": ts(1), "user_id": "U0ANA",
                           "text": "my VPN broke", "source": "event"})
    bot.command("/threadtune", "forget @nobody", user_id=ADMIN, response_url=fake_slack.response_url())
    assert "no user named @nobody" in reply(fake_slack)
    assert db.execute("select deleted from messages").fetchall() == [(0,)]
