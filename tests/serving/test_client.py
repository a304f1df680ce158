"""serving.client against the scripted OpenAI-compatible server over real HTTP."""

from __future__ import annotations

import pytest

from serving.client import ModelClient, health, health_url
from serving.errors import ServerError, ServerTimeout, ServerUnavailable


def test_chat_returns_text_model_and_usage(fake_llm):
    fake_llm.script = ["Four."]
    out = ModelClient(fake_llm.base_url, "threadtune/base").chat([{"role": "user", "content": "2+2?"}],
                                                                  max_tokens=8)
    assert out.text == "Four." and out.model == "threadtune/base" and out.completion_tokens == 1
    assert fake_llm.chat_requests()[0]["max_tokens"] == 8


def test_stream_yields_deltas_in_order(fake_llm):
    fake_llm.script = ["one two three"]
    deltas = list(ModelClient(fake_llm.base_url, "m").stream([{"role": "user", "content": "count"}]))
    assert "".join(deltas) == "one two three" and len(deltas) == 3


def test_model_name_picks_the_adapter(fake_llm):
    ModelClient(fake_llm.base_url, "threadtune/base").chat([{"role": "user", "content": "x"}],
                                                          model="threadtune/v2")
    assert fake_llm.chat_requests()[0]["model"] == "threadtune/v2"


def test_retries_are_bounded(fake_llm):
    fake_llm.fail_status, fake_llm.fail_times = 503, 1
    client = ModelClient(fake_llm.base_url, "m", max_retries=1)
    assert client.chat([{"role": "user", "content": "x"}]).text
    fake_llm.fail_times = 5
    with pytest.raises(ServerError, match="HTTP 503"):
        client.chat([{"role": "user", "content": "x"}])
    assert len(fake_llm.chat_requests()) == 2 + 2


def test_timeout_raises_server_timeout_naming_the_fix(fake_llm):
    fake_llm.delay_s = 1.0
    with pytest.raises(ServerTimeout, match="THREADTUNE_ANSWER_TIMEOUT_S"):
        ModelClient(fake_llm.base_url, "m", timeout=0.2, max_retries=0).chat([{"role": "user", "content": "x"}])


def test_unreachable_server_raises_server_unavailable():
    from bot.server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServerUnavailable, match="threadtune serve"):
        ModelClient(url, "m", max_retries=0).chat([{"role": "user", "content": "x"}])
    assert health(url) is False


def test_pinned_server_refusing_a_model_name_is_a_server_error(fake_llm):
    fake_llm.pinned = True
    with pytest.raises(ServerError, match="pinned"):
        ModelClient(fake_llm.base_url, "threadtune/other").chat([{"role": "user", "content": "x"}])


def test_bad_base_url_is_refused_before_any_request():
    with pytest.raises(ServerError, match="not an http"):
        ModelClient("localhost:8000", "m")


def test_models_and_health(fake_llm):
    client = ModelClient(fake_llm.base_url, "m")
    assert client.models() == ["threadtune/base"] and client.health()
    assert health_url("http://h:1/v1/") == "http://h:1/health"
