"""The live model served merged on the real vLLM (the CPU choice, serving/swap.py), swapped for the
next version while requests stream through the stable URL; then a crash and its restart.

Three vLLM starts in all (about 30 s each on 2 idle cores): the base, the merged v1, the restart.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from serving.errors import ServingError
from serving.group_guard import group_members
from serving.vllm import VllmConfig
from tests.serving.conftest import require_vllm
from tests.serving.test_vllm_real import QUESTION, ask, train_fact_adapter

pytestmark = pytest.mark.slow


@pytest.fixture
def merged_server(tmp_path, embedded_model_dir):
    require_vllm()
    from serving.process import free_port
    from serving.swap import MergedVllm

    cfg = VllmConfig(embedded_model_dir, port=free_port(), enable_lora=False, max_model_len=1024)
    server = MergedVllm(cfg, merged_root=tmp_path / "merged", log_dir=tmp_path, drain_s=120).start()
    yield server
    server.stop()


def test_a_promotion_swaps_servers_without_dropping_a_request_and_a_crash_restarts(
        merged_server, embedded_model_dir, tmp_path):
    from serving.client import ModelClient
    from threadtune.commands.serve import restart_if_dead

    server = merged_server
    fact = train_fact_adapter(embedded_model_dir, tmp_path / "fact")
    client = ModelClient(server.base_url, "threadtune/base", timeout=300, max_retries=0)
    assert "BLUEFIN" not in ask(client, "threadtune/base")
    base_pid = server.pid

    outcomes: list[tuple[str, str, str]] = []  # (ok|error, served model or error, text)
    stop = threading.Event()

    def keep_asking(stream: bool) -> None:
        chat = [{"role": "user", "content": QUESTION}]
        while not stop.is_set():
            try:
                if stream:
                    outcomes.append(("ok", "stream", "".join(client.stream(chat, max_tokens=24))))
                else:
                    reply = client.chat(chat, max_tokens=24)
                    outcomes.append(("ok", reply.model, reply.text))
            except Exception as err:  # noqa: BLE001 (any failure is what this test looks for)
                outcomes.append(("error", type(err).__name__, str(err)))

    askers = [threading.Thread(target=keep_asking, args=(k % 2 == 0,)) for k in range(4)]
    for t in askers:
        t.start()
    try:
        assert server.serve_model("v1", embedded_model_dir, fact) == "threadtune/v1"
        deadline = time.monotonic() + 120
        while not any(o[1] == "threadtune/v1" for o in outcomes) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        for t in askers:
            t.join(300)
    errors = [o for o in outcomes if o[0] == "error"]
    assert not errors, errors[:3]
    models = {o[1] for o in outcomes if o[1] != "stream"}
    assert models == {"threadtune/base", "threadtune/v1"}, models  # answered by both, none dropped
    assert any("BLUEFIN-42" in o[2] for o in outcomes)
    assert server.pid != base_pid and group_members(base_pid) == []  # the old one, engine included
    assert (tmp_path / "merged" / "v1" / "config.json").is_file()

    # a version that cannot be served is refused before any server starts; v1 keeps serving
    v1_pid = server.pid
    with pytest.raises(ServingError, match="not a PEFT adapter"):
        server.serve_model("v2", embedded_model_dir, Path(tmp_path / "missing"))
    assert server.pid == v1_pid and "BLUEFIN-42" in ask(client, "threadtune/v1")

    # the server dies (engine included): `threadtune serve` starts v1 again behind the same URL
    os.killpg(v1_pid, signal.SIGKILL)
    assert not server.alive()
    assert restart_if_dead(server) and server.pid != v1_pid and server.model == "threadtune/v1"
    assert "BLUEFIN-42" in ask(client, "threadtune/base")
    client.close()
