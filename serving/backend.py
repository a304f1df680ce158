"""The two serving backends behind one small Protocol, and the choice between them.

- :class:`serving.embedded.EmbeddedServer`: ``transformers serve`` on the CPU, a merged copy per
  adapter, a restart per promotion.
- :class:`serving.vllm.VllmServer`: vLLM from its own environment, on a CPU or a GPU (spawned or
  attached), adapters hot-loaded with no restart (on a GPU);
- :class:`serving.swap.MergedVllm`: vLLM serving the live adapter merged, behind a proxy, swapped
  for the next version without dropping a request (on a CPU).

serving/ never reads the store: the caller (the CLI, the bot) reads the live model from the
``models`` table and passes :class:`LiveModel` in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from serving.errors import ServingError

BackendName = Literal["embedded", "vllm"]
#: How a spawned vLLM serves the live adapter: unmerged and hot-loaded, or merged and swapped.
VllmLive = Literal["auto", "merged", "adapter"]


@dataclass(frozen=True)
class LiveModel:
    """The model version to serve: ``name`` None means the base model alone."""

    name: str | None
    base_path: Path
    adapter_path: Path | None = None


class Backend(Protocol):
    """What the CLI and the bot need from a running model server."""

    base_url: str
    model: str

    def start(self) -> Backend:
        """Start (or check) the server; returns self once ``/health`` answers."""
        ...

    def stop(self) -> None:
        """Stop a server we started."""
        ...

    @property
    def spawned(self) -> bool:
        """Whether this process started the server (an attached one is not ours to restart)."""
        ...

    def alive(self) -> bool:
        """Whether the server answers ``/health``."""
        ...

    def restart(self) -> Backend:
        """Start a spawned server again with what it served (after a crash)."""
        ...

    def serve_model(self, name: str | None, base_path: Path, adapter_path: Path | None) -> str:
        """Serve this version from now on; returns the model name clients send."""
        ...


def pick_backend(choice: str, *, vllm_ready: bool | None = None,
                 vllm_python: Path | None = None) -> BackendName:
    """``auto`` → vLLM whenever its environment (``.venv-vllm``) is present, on a CPU or a GPU;
    else embedded (``transformers serve``)."""
    if choice in ("embedded", "vllm"):
        return choice  # type: ignore[return-value]
    if choice != "auto":
        raise ServingError(f"serving backend {choice!r}: use 'auto', 'embedded' or 'vllm' "
                           "(THREADTUNE_SERVING_BACKEND or --backend)")
    if vllm_ready is None:
        from serving.vllm import vllm_available

        vllm_ready = vllm_available(vllm_python) if vllm_python else vllm_available()
    return "vllm" if vllm_ready else "embedded"


def make_backend(choice: str, live: LiveModel, *, port: int, serving_url: str | None = None,
                 merged_dir: Path | None = None, work_dir: Path | None = None,
                 host: str = "127.0.0.1", max_lora_rank: int = 16,
                 continuous_batching: bool = False, vllm_python: Path | None = None,
                 cpu_kvcache_gib: int = 1, log_path: Path | None = None,
                 vllm_live: VllmLive = "auto") -> Backend:
    """A not-yet-started backend serving ``live``; ``serving_url`` attaches to a running vLLM.

    ``vllm_live`` (a spawned vLLM): ``adapter`` serves the adapter unmerged and hot-loads the next
    one; ``merged`` serves it merged and swaps servers (``serving/swap.py``); ``auto`` is merged
    on a CPU, where unmerged LoRA runs on fallback kernels, and the adapter on a GPU."""
    kind = "vllm" if serving_url else pick_backend(choice, vllm_python=vllm_python)
    if kind == "vllm":
        from serving.models import served_name
        from serving.vllm import Adapter, VllmConfig, VllmServer, has_cuda

        if serving_url:
            return VllmServer.attach(serving_url)
        from serving.adapters import LORA_RANKS, adapter_rank
        from serving.process import free_port

        if vllm_live == "auto":
            vllm_live = "adapter" if has_cuda() else "merged"
        if vllm_live == "merged":
            from serving.swap import MergedVllm

            cfg = VllmConfig(base_model=live.base_path, host=host, port=port, enable_lora=False,
                             cpu_kvcache_gib=cpu_kvcache_gib)
            if vllm_python is not None:
                cfg.python = Path(vllm_python)
            log_dir = Path(log_path).parent if log_path else Path(live.base_path).parent
            return MergedVllm(cfg, live.name, live.adapter_path, log_dir=log_dir,
                              merged_root=merged_dir or (Path(live.base_path).parent / "merged"))
        adapters = [Adapter(served_name(live.name), live.adapter_path)] if live.adapter_path else []
        port = port or free_port(host)
        rank = adapter_rank(live.adapter_path) if live.adapter_path else None
        if rank and rank > max_lora_rank:  # room for the live adapter: the smallest rank vLLM takes
            max_lora_rank = min((r for r in LORA_RANKS if r >= rank), default=rank)
        cfg = VllmConfig(base_model=live.base_path, adapters=adapters, host=host, port=port,
                         max_lora_rank=max_lora_rank, cpu_kvcache_gib=cpu_kvcache_gib)
        if vllm_python is not None:
            cfg.python = Path(vllm_python)
        return VllmServer.spawn_config(cfg, log_path=log_path)
    from serving.embedded import EmbeddedServer, merged_model

    path = live.base_path
    if live.adapter_path is not None:
        root = merged_dir or (Path(live.base_path).parent / "merged")
        from serving.models import served_name

        path = merged_model(live.base_path, live.adapter_path, root / served_name(live.name).split("/", 1)[1])
    return EmbeddedServer(path, port, name=live.name, host=host, work_dir=work_dir,
                          merged_dir=merged_dir, continuous_batching=continuous_batching)
