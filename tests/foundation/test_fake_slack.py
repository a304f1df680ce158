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
    fake_slack.add_channel("C1", "help")
    fake_slack.fail("chat.postMessage", error="channel_not_found")
    client = WebClient(token="xoxb-t", base_url=fake_slack.api_url)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response["error"] == "channel_not_found"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]


def test_fake_supports_update_permalink_views_and_uploads(fake_slack):
    fake_slack.add_channel("C1", "help")
    client = WebClient(token="xoxb-t", base_url=fake_slack.api_url)
    posted = client.chat_postMessage(channel="C1", text="first", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}])
    client.chat_update(channel="C1", ts=posted["ts"], text="second")
    assert fake_slack.posted[("C1", posted["ts"])]["text"] == "second"
    assert "archives/C1" in client.chat_getPermalink(channel="C1", message_ts=posted["ts"])["permalink"]
    view = client.views_open(trigger_id=fake_slack.trigger_id(),
                             view={"type": "modal", "title": {"type": "plain_text", "text": "x"},
                                   "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "y"}}]})
    assert view["view"]["id"] in fake_slack.views
    client.files_upload_v2(channel="C1", content="hello", filename="a.txt", title="A")
    assert fake_slack.count("files.getUploadURLExternal") == 1
    assert fake_slack.count("files.completeUploadExternal") == 1
    assert list(fake_slack.uploads.values()) == [b"hello"]


# --- the fake refuses what Slack refuses -------------------------------------------------------

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}


def _error(call) -> str:  # noqa: ANN001
    with pytest.raises(SlackApiError) as err:
        call()
    return err.value.response["error"]


@pytest.fixture
def client(fake_slack):
    fake_slack.add_channel("C1", "help")
    return WebClient(token="xoxb-t", base_url=fake_slack.api_url)


def test_fake_refuses_missing_arguments_unknown_tokens_and_scopes_the_manifest_lacks(fake_slack, client):
    assert _error(lambda: client.api_call("chat.update", json={"channel": "C1", "text": "no ts"})) \
        == "invalid_arguments"
    assert _error(lambda: client.api_call("chat.postEphemeral", json={"channel": "C1", "text": "no user"})) \
        == "invalid_arguments"
    stranger = WebClient(token="xoxb-unknown", base_url=fake_slack.api_url)
    assert _error(lambda: stranger.chat_postMessage(channel="C1", text="hi")) == "invalid_auth"
    # nothing of threadtune adds reactions, so the manifest does not ask for reactions:write
    assert _error(lambda: client.reactions_add(channel="C1", name="eyes", timestamp="1.0")) == "missing_scope"
    assert _error(lambda: client.conversations_open(users="U1")) == "missing_scope"


def test_fake_refuses_blocks_slack_refuses(fake_slack, client):
    fake_slack.rate_limits.pop("chat.postMessage")  # seven posts in one channel in a second
    def post(blocks):  # noqa: ANN001, ANN202
        return lambda: client.chat_postMessage(channel="C1", text="t", blocks=blocks)

    assert _error(post([{"type": "section", "text": {"type": "mrkdwn", "text": " "}}])) == "invalid_blocks"
    assert _error(post([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])) == "invalid_blocks"
    assert _error(post([SECTION] * 51)) == "invalid_blocks"
    assert _error(post([{"type": "nonsense"}])) == "invalid_blocks"
    assert _error(post([{"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "b"}, "action_id": "a", "value": "v" * 2001}]}])
    ) == "invalid_blocks"
    big = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3000}}] * 5
    assert _error(post(big)) == "msg_blocks_too_long"
    assert client.chat_postMessage(channel="C1", text="t", blocks=[SECTION] * 50)["ok"]


def test_fake_refuses_a_modal_whose_prefill_is_longer_than_its_max_length(fake_slack, client):
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Edit"}, "blocks": [
        {"type": "input", "block_id": "b", "label": {"type": "plain_text", "text": "A"},
         "element": {"type": "plain_text_input", "action_id": "a", "max_length": 10, "initial_value": "x" * 11}}]}
    assert _error(lambda: client.views_open(trigger_id=fake_slack.trigger_id(), view=view)) == "invalid_arguments"
    assert _error(lambda: client.views_open(trigger_id=fake_slack.trigger_id(),
                                            view={**view, "type": None})) == "invalid_arguments"


def test_trigger_ids_work_once_and_expire_after_three_seconds(fake_slack, client):
    view = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": [SECTION]}
    assert _error(lambda: client.views_open(trigger_id="made-up", view=view)) == "invalid_trigger_id"
    trigger = fake_slack.trigger_id()
    assert client.views_open(trigger_id=trigger, view=view)["ok"]
    assert _error(lambda: client.views_open(trigger_id=trigger, view=view)) == "exchanged_trigger_id"
    old = fake_slack.trigger_id()
    fake_slack._triggers[old] -= 3.5  # issued 3.5 s ago
    assert _error(lambda: client.views_open(trigger_id=old, view=view)) == "expired_trigger_id"


def test_not_in_channel_until_joined_and_dm_ids_start_with_d(fake_slack, client):
    fake_slack.add_channel("C2", "elsewhere", is_member=False)
    assert _error(lambda: client.chat_postMessage(channel="C2", text="hi")) == "not_in_channel"
    assert _error(lambda: client.conversations_history(channel="C2")) == "not_in_channel"
    assert _error(lambda: client.chat_postMessage(channel="C404", text="hi")) == "channel_not_found"
    client.conversations_join(channel="C2")
    assert client.chat_postMessage(channel="C2", text="hi")["ok"]
    assert client.chat_postMessage(channel="U0ANA", text="hi")["channel"].startswith("D")


def test_chat_update_with_an_empty_block_list_clears_the_blocks(fake_slack, client):
    posted = client.chat_postMessage(channel="C1", text="first", blocks=[SECTION])
    client.chat_update(channel="C1", ts=posted["ts"], text="second")
    assert fake_slack.posted[("C1", posted["ts"])]["blocks"] == [SECTION]
    client.chat_update(channel="C1", ts=posted["ts"], text="third", blocks=[])
    assert fake_slack.posted[("C1", posted["ts"])]["blocks"] == []


def test_chat_update_beyond_tier_3_is_answered_429_with_retry_after(fake_slack, client):
    fake_slack.rate_limits["chat.update"] = (3, 60.0, "team")
    posted = client.chat_postMessage(channel="C1", text="x")
    for i in range(3):
        client.chat_update(channel="C1", ts=posted["ts"], text=str(i))
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C1", ts=posted["ts"], text="one too many")
    assert err.value.response.status_code == 429
    assert 1 <= int(err.value.response.headers["Retry-After"]) <= 60


def test_slash_text_arrives_as_the_manifest_should_escape_makes_it(fake_slack):
    from tests.fakes.signed import escape_refs, plain_refs
    from tests.fakes.slack_rules import should_escape

    fake_slack.add_user("U0ANA", "ana")
    assert should_escape("/threadtune")
    assert escape_refs("watch #support for @ana, not @channel", fake_slack) == \
        "watch <#C0SUPPORT|support> for <@U0ANA|ana>, not <!channel>"
    assert plain_refs("watch <#C0SUPPORT|support> for <@U0ANA|ana>, not <!channel>") == \
        "watch #support for @ana, not <!channel>"  # typed literally, it arrives as typed
