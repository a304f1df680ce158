"""Evaluation through a model server: the tuned system scored as vLLM serves it to users.

In-process evaluation (``training.evaluate.generate``) merges the adapter into the base, which is
what ``transformers serve`` does too. vLLM serves the adapter *unmerged* (LoRA kernels, its own
batching, bf16), so ``threadtune eval --backend vllm`` scores what a vLLM deployment answers:

- :func:`vllm_for_eval` spawns vLLM from ``.venv-vllm`` with the base as ``threadtune/base`` and
  the adapter as ``threadtune/<version>`` (``--lora-modules``), or attaches to a running one
  (``--server URL``) and hot-loads the adapter there when it lacks it;
- :func:`served_generate` sends the chats through :class:`serving.client.ModelClient`, greedy
  (temperature 0, like the bot), ``concurrency`` in flight.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Seconds one answer may take (answers run ``concurrency`` at a time on a busy CPU).
ANSWER_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Served:
    """An OpenAI-compatible server serving the base model as ``base`` and the tuned model as ``tuned``."""

    base_url: str
    base: str
    tuned: str | None = None


def served_generate(served: Served, chats: list[list[dict[str, str]]], *, tuned: bool, max_new_tokens: int,
                    concurrency: int) -> list[tuple[str, float]]:
    """Greedy answers from the server, ``concurrency`` in flight; each answer's latency is the wall
    time of the whole set divided by its size, as for in-process batches."""
    from serving.client import ModelClient

    model = served.tuned if tuned else served.base
    if model is None:
        raise ValueError("the tuned systems need a server that serves the adapter")
    if not chats:
        return []
    client = ModelClient(served.base_url, model, timeout=ANSWER_TIMEOUT_S, max_retries=0)
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            texts = list(pool.map(lambda chat: client.chat(chat, max_tokens=max_new_tokens).text.strip(), chats))
    finally:
        client.close()
    share = (time.perf_counter() - started) / len(chats)
    return [(text, share) for text in texts]


@contextmanager
def vllm_for_eval(version: str, base_model: Path, adapter_path: Path, *, url: str | None = None,
                  vllm_python: Path | None = None, cpu_kvcache_gib: int = 1,
                  log_path: Path | None = None) -> Iterator[Served]:
    """A vLLM server serving ``base_model`` and ``adapter_path`` unmerged, for one evaluation.

    ``url``: attach to that running server (started with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``)
    and load the adapter as ``threadtune/<version>`` unless it is served already; it is left loaded
    and the server running. Otherwise one is spawned and stopped afterwards.
    """
    from serving.backend import LiveModel, make_backend
    from serving.models import served_name
    from serving.vllm import BASE_NAME, VllmServer

    name = served_name(version)
    if url:
        server = VllmServer.attach(url).start()
        if name not in server.models():
            server.load_adapter(name, Path(adapter_path))
        yield Served(server.base_url, BASE_NAME, name)
        return
    server = make_backend("vllm", LiveModel(version, Path(base_model), Path(adapter_path)), port=0,
                          vllm_python=vllm_python, cpu_kvcache_gib=cpu_kvcache_gib, log_path=log_path,
                          vllm_live="adapter")
    server.start()
    try:
        yield Served(server.base_url, server.base_name, server.model)
    finally:
        server.stop()
