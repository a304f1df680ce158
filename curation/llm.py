"""The curation model for one run, from plain values: an endpoint, or the base model served for it.

With no endpoint URL, :func:`llm_session` serves the base model on loopback for the run (vLLM when
its environment is present, else ``transformers serve``) and stops it afterwards. Either way the
model is asked through :class:`serving.client.ModelClient`, the one LLM path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from curation.errors import CurationError
from curation.extract import LLM
from serving.errors import ServingError

if TYPE_CHECKING:
    from serving.client import ModelClient


@dataclass(frozen=True)
class LLMConfig:
    """Where the curation model comes from, as plain values (the CLI builds it from Settings).

    ``base_url`` set: that OpenAI-compatible endpoint (``model`` unset: the first it lists).
    Unset: ``base_model`` (a plain HF folder) served on loopback for the run by ``backend``
    (``auto``: vLLM when its environment is present, else ``transformers serve``).
    """

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    base_model: Path | None = None
    backend: str = "auto"
    vllm_python: Path | None = None
    cpu_kvcache_gib: int = 1
    #: Token budget of one extraction reply.
    max_tokens: int = 384
    #: Seconds one reply may take.
    timeout_s: float = 600.0
    #: Where a server started for the run writes its log.
    log_dir: Path | None = None


#: Sources in flight at once when the run starts a vLLM server (it batches them).
VLLM_CONCURRENCY = 4


def _client(base_url: str, model: str, cfg: LLMConfig, api_key: str | None = None) -> ModelClient:
    from serving.client import ModelClient

    return ModelClient(base_url, model, api_key=api_key, timeout=cfg.timeout_s, max_retries=1)


@contextmanager
def llm_session(cfg: LLMConfig) -> Iterator[LLM]:
    """The curation LLM: the endpoint ``cfg.base_url``, or ``cfg.base_model`` served on loopback
    for the duration of the ``with`` block (started here, stopped on exit)."""
    if cfg.base_url:
        client = _client(cfg.base_url, cfg.model or "", cfg, cfg.api_key)
        try:
            if not cfg.model:
                try:
                    client.model = client.models()[0]
                except (ServingError, IndexError) as err:
                    raise CurationError(f"cannot list models at {cfg.base_url} ({err or 'none served'}); "
                                        "set THREADTUNE_LLM_MODEL") from None
            yield LLM(client, max_tokens=cfg.max_tokens, batching=True)
        finally:
            client.close()
        return
    if cfg.base_model is None:
        raise CurationError("no curation model: set THREADTUNE_LLM_BASE_URL or a base model")
    from serving.backend import LiveModel, make_backend
    from serving.embedded import EmbeddedServer

    log_dir = cfg.log_dir or Path(cfg.base_model).parent
    server = make_backend(cfg.backend, LiveModel(None, Path(cfg.base_model)), port=0,
                          vllm_python=cfg.vllm_python, cpu_kvcache_gib=cfg.cpu_kvcache_gib,
                          log_path=log_dir / "curate-vllm.log", work_dir=None)
    server.start()
    try:
        client = _client(server.base_url, server.model, cfg)
        try:
            yield LLM(client, max_tokens=cfg.max_tokens, batching=not isinstance(server, EmbeddedServer))
        finally:
            client.close()
    finally:
        server.stop()
