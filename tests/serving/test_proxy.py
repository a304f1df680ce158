"""serving/proxy.py: one stable URL in front of a server that is being swapped, over real HTTP."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from serving.client import ModelClient, health
from serving.errors import ServingError
from serving.proxy import Proxy
from tests.fakes.llm import FakeLLM

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def two():
    with FakeLLM("old server answers", served=["threadtune/v1"]) as old, \
            FakeLLM("new server answers", served=["threadtune/v2"]) as new:
        old.pinned = new.pinned = True  # each refuses a model name it does not serve, as vLLM does
        yield old, new


def test_requests_pass_through_streaming_and_not(two):
    old, _ = two
    proxy = Proxy(old.base_url).start()  # no model: names pass unchanged
    try:
        client = ModelClient(proxy.base_url, "threadtune/v1", max_retries=0)
        assert client.chat(HELLO, max_tokens=8).text == "old server answers"
        assert "".join(client.stream(HELLO, max_tokens=8)) == "old server answers"
        assert client.models() == ["threadtune/v1"] and health(proxy.base_url)
        assert old.chat_requests()[0]["max_tokens"] == 8  # the body arrives as sent
        client.close()
    finally:
        proxy.stop()


def test_a_switch_lets_requests_in_flight_finish_where_they_started(two):
    old, new = two
    old.delay_s = 1.0
    proxy = Proxy(old.base_url, model="threadtune/v1").start()
    client = ModelClient(proxy.base_url, "threadtune/v1", max_retries=0, timeout=30)
    try:
        with ThreadPoolExecutor(4) as pool:
            slow = [pool.submit(client.chat, HELLO, max_tokens=8) for _ in range(3)]
            slow.append(pool.submit(lambda: "".join(client.stream(HELLO, max_tokens=8))))
            deadline = time.monotonic() + 10
            while proxy.in_flight(old.base_url) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proxy.switch(new.base_url, "threadtune/v2") == old.base_url.removesuffix("/v1")
            # new requests go to the new server, and the live model answers whatever name they send
            late = client.chat(HELLO, max_tokens=8)
            assert late.text == "new server answers" and new.chat_requests()[0]["model"] == "threadtune/v2"
            assert proxy.in_flight(old.base_url) == 4
            assert proxy.drain(old.base_url, timeout_s=10)
            done = [f.result() for f in slow]
        assert [getattr(d, "text", d) for d in done] == ["old server answers"] * 4
        assert proxy.in_flight(old.base_url) == 0 and len(new.chat_requests()) == 1
    finally:
        client.close()
        proxy.stop()


def test_drain_gives_up_at_its_timeout(two):
    old, new = two
    old.delay_s = 2.0
    proxy = Proxy(old.base_url).start()
    client = ModelClient(proxy.base_url, "threadtune/v1", max_retries=0, timeout=30)
    try:
        worker = threading.Thread(target=client.chat, args=(HELLO,), kwargs={"max_tokens": 8})
        worker.start()
        while not proxy.in_flight(old.base_url):
            time.sleep(0.01)
        proxy.switch(new.base_url)
        started = time.monotonic()
        assert not proxy.drain(old.base_url, timeout_s=0.3)
        assert time.monotonic() - started < 1.5
        worker.join()
    finally:
        client.close()
        proxy.stop()


def test_an_upstream_that_is_down_gets_an_openai_style_502(two):
    old, _ = two
    old.stop()
    proxy = Proxy(old.base_url).start()
    try:
        resp = httpx.post(proxy.base_url + "/chat/completions", json={"model": "x", "messages": HELLO})
        assert resp.status_code == 502 and "not answering" in resp.json()["error"]["message"]
        assert not health(proxy.base_url)
        with pytest.raises(ServingError):
            ModelClient(proxy.base_url, "threadtune/v1", max_retries=0).chat(HELLO, max_tokens=4)
    finally:
        proxy.stop()


def test_a_client_that_hangs_up_is_not_reported_as_an_error(two, capsys):
    import socket

    old, _ = two
    proxy = Proxy(old.base_url).start()
    try:
        host, port = proxy.base_url.split("//")[1].split("/")[0].split(":")
        with socket.create_connection((host, int(port))) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
        time.sleep(0.3)
        assert "Traceback" not in capsys.readouterr().err
        assert ModelClient(proxy.base_url, "threadtune/v1", max_retries=0).chat(HELLO, max_tokens=4).text
    finally:
        proxy.stop()
