"""The fake Slack and the signed-request helper, through the real bolt app over real HTTP."""

from __future__ import annotations

import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from tests.fakes.wait import stays


def test_signed_slash_command_reaches_bot_and_reply_is_recorded(bot, fake_slack):
    resp = bot.command("/threadtune", "help", response_url=fake_slack.response_url("help"))
    assert resp.status_code == 200
    calls = fake_slack.wait_for("response_url")
    assert "threadtune" in calls[0].params["text"]


def test_unsigned_request_is_refused_with_401(bot, fake_slack):
    resp = bot.command("/threadtune", "help", sign=False, response_url=fake_slack.response_url())
    assert resp.status_code == 401
    stays(lambda: fake_slack.count("response_url") == 0, 0.2, what="no reply")


def test_fake_records_calls_and_paginates(fake_slack):
    fake_slack.add_channel("C1", "help")
    fake_slack.history["C1"] = [{"type": "message", "ts": f"{1700000000 + i}.000100", "text": str(i)}
                                for i in range(5)]
    client = WebClient(token="xoxb-t", base_url=fake_slack.api_url)
    first = client.conversations_history(channel="C1", limit=2)
    assert [m["text"] for m in first["messages"]] == ["4", "3"]
    cursor = first["response_metadata"]["next_cursor"]
    second = client.conversations_history(channel="C1", limit=2, cursor=cursor)
    assert [m["text"] for m in second["messages"]] == ["2", "1"]
    assert fake_slack.count("conversations.history") == 2
    assert fake_slack.calls_for("conversations.history")[0].token == "xoxb-t"


def test_fake_answers_429_with_retry_after_and_client_retries(fake_slack):
    fake_slack.rate_limit("auth.test", retry_after=1)
    client = WebClient(token="xoxb-t", base_url=fake_slack.api_url)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    start = time.monotonic()
    assert client.auth_test()["ok"]
    assert time.monotonic() - start >= 0.9
    assert fake_slack.count("auth.test") == 2


def test_fake_api_error_on_request(fake_slack):
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    client = WebClient(token="xoxb-t", base_url=fake_slack.api_url)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response["error"] == "channel_not_found"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]


def test_fake_supports_update_permalink_views_and_uploads(fake_slack):
    client = WebClient(token="xoxb-t", base_url=fake_slack.api_url)
    posted = client.chat_postMessage(channel="C1", text="first", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}])
    client.chat_update(channel="C1", ts=posted["ts"], text="second")
    assert fake_slack.posted[("C1", posted["ts"])]["text"] == "second"
    assert "archives/C1" in client.chat_getPermalink(channel="C1", message_ts=posted["ts"])["permalink"]
    view = client.views_open(trigger_id="t", view={"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []})
    assert view["view"]["id"] in fake_slack.views
    client.files_upload_v2(channel="C1", content="hello", filename="a.txt", title="A")
    assert fake_slack.count("files.getUploadURLExternal") == 1
    assert fake_slack.count("files.completeUploadExternal") == 1
    assert list(fake_slack.uploads.values()) == [b"hello"]
