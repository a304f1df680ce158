"""The vLLM backend: base model + LoRA adapters on a GPU, adapters hot-loaded with no restart.

vLLM pins its own torch and transformers, so it runs in its own environment (or the official
container) and threadtune only speaks HTTP to it. Two modes:

- **spawn**: :func:`build_command` builds and validates
  ``vllm serve BASE --enable-lora --lora-modules name=path … --max-lora-rank R --max-loras K``
  before anything starts; :class:`VllmServer` runs it with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``.
- **attach**: ``VllmServer.attach(base_url)`` talks to a server that already runs (a GPU host,
  Kubernetes) started with that same variable.

Promotion hot-loads the new adapter with ``POST /v1/load_lora_adapter`` (``{"lora_name",
"lora_path"}``) and unloads the old one with ``POST /v1/unload_lora_adapter`` (``{"lora_name"}``),
the runtime LoRA API vLLM documents.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serving.client import health
from serving.embedded import served_name
from serving.errors import ServerError, ServingError
from serving.models import offline_env

#: LoRA ranks vLLM accepts for --max-lora-rank.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
RUNTIME_LORA_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
BASE_NAME = served_name(None)


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter folder served under ``name`` (the model name clients send)."""

    name: str
    path: Path


@dataclass
class VllmConfig:
    """What `vllm serve` needs; validated as a whole by :func:`validate`."""

    base_model: Path
    adapters: list[Adapter] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    max_lora_rank: int = 16
    max_loras: int = 4
    served_name: str = BASE_NAME
    extra_args: list[str] = field(default_factory=list)


def adapter_rank(path: Path) -> int | None:
    """The LoRA rank ``r`` of an adapter folder, or None when unreadable."""
    try:
        return int(json.loads((Path(path) / "adapter_config.json").read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def validate(cfg: VllmConfig) -> None:
    """Every problem of ``cfg`` in one ServingError, before anything is spawned."""
    problems: list[str] = []
    base = Path(cfg.base_model)
    if not (base / "config.json").is_file():
        problems.append(f"base model {base}: no config.json (vLLM needs a local HF folder offline)")
    if cfg.max_lora_rank not in LORA_RANKS:
        problems.append(f"--max-lora-rank {cfg.max_lora_rank}: must be one of {list(LORA_RANKS)}")
    if cfg.max_loras < 1:
        problems.append(f"--max-loras {cfg.max_loras}: must be at least 1")
    if not 1 <= cfg.port <= 65535:
        problems.append(f"port {cfg.port}: out of range 1..65535")
    names = [a.name for a in cfg.adapters]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"adapter name {dup!r} is used twice")
    for a in cfg.adapters:
        if a.name == cfg.served_name:
            problems.append(f"adapter name {a.name!r} clashes with the base model's served name")
        if not a.name or any(c in a.name for c in " ="):
            problems.append(f"adapter name {a.name!r}: must be non-empty, without spaces or '='")
        if not (Path(a.path) / "adapter_config.json").is_file():
            problems.append(f"adapter {a.name}: {a.path} has no adapter_config.json")
            continue
        rank = adapter_rank(a.path)
        if rank is None:
            problems.append(f"adapter {a.name}: cannot read the rank 'r' from {a.path}/adapter_config.json")
        elif rank > cfg.max_lora_rank:
            problems.append(f"adapter {a.name}: rank {rank} exceeds --max-lora-rank "
                            f"{cfg.max_lora_rank}; raise it to {min(r for r in LORA_RANKS if r >= rank)}")
    if problems:
        raise ServingError("invalid vLLM configuration: " + "; ".join(problems))


def build_command(cfg: VllmConfig, vllm: str = "vllm") -> list[str]:
    """The validated ``vllm serve`` command line."""
    validate(cfg)
    cmd = [vllm, "serve", str(cfg.base_model), "--host", cfg.host, "--port", str(cfg.port),
           "--served-model-name", cfg.served_name, "--enable-lora",
           "--max-lora-rank", str(cfg.max_lora_rank), "--max-loras", str(cfg.max_loras)]
    if cfg.adapters:
        cmd += ["--lora-modules", *(f"{a.name}={a.path}" for a in cfg.adapters)]
    return cmd + list(cfg.extra_args)


def vllm_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Offline, with runtime LoRA loading allowed."""
    env = offline_env(base)
    env.update(RUNTIME_LORA_ENV)
    return env


def vllm_available() -> bool:
    """vLLM importable and a CUDA device present (what ``--backend auto`` checks)."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


class VllmServer:
    """A vLLM server we spawned, or one we attach to by base URL; loads and unloads adapters."""

    def __init__(self, base_url: str, *, cfg: VllmConfig | None = None, api_key: str | None = None,
                 timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.cfg = cfg
        self.base_name = cfg.served_name if cfg else BASE_NAME
        #: The name clients send now: the base, or the adapter :meth:`serve_model` made live.
        self.model = cfg.adapters[-1].name if cfg and cfg.adapters else self.base_name
        self.timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def attach(cls, base_url: str, *, api_key: str | None = None) -> VllmServer:
        """Talk to a vLLM server that is already running (it must have runtime LoRA updating on)."""
        return cls(base_url, api_key=api_key)

    @classmethod
    def spawn_config(cls, cfg: VllmConfig) -> VllmServer:
        """A server to be started by :meth:`start` from ``cfg``."""
        return cls(f"http://{cfg.host}:{cfg.port}/v1", cfg=cfg)

    # --- lifecycle --------------------------------------------------------------------------
    def start(self, startup_timeout_s: float = 900.0, log_path: Path | None = None) -> VllmServer:
        """Spawn ``vllm serve`` (spawn mode) and wait for ``/health``; in attach mode, just check it."""
        if self.cfg is None:
            if not health(self.base_url, timeout=5):
                raise ServerError(f"{self.base_url}: no vLLM server answers /health; start it or fix "
                                  "THREADTUNE_SERVING_URL")
            return self
        exe = shutil.which("vllm")
        if exe is None:
            raise ServerError("`vllm` is not on PATH: install it in its own environment (README "
                              "'GPU serving with vLLM') or attach with THREADTUNE_SERVING_URL")
        cmd = build_command(self.cfg, exe)
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(cmd, env=vllm_env(), stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        deadline = time.monotonic() + startup_timeout_s
        while not health(self.base_url):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"vllm serve did not become healthy at {self.base_url}"
                                  + (f"; see {log_path}" if log_path else ""))
            time.sleep(1)
        return self

    def stop(self) -> None:
        """Stop a spawned server; an attached one is left running."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- runtime LoRA API -------------------------------------------------------------------
    def _post(self, path: str, body: dict) -> None:
        try:
            resp = httpx.post(self.base_url + path, json=body, headers=self._headers,
                              timeout=self.timeout_s)
        except httpx.HTTPError as err:
            raise ServerError(f"{self.base_url}{path}: {err}") from err
        if resp.status_code != 200:
            hint = ""
            if resp.status_code == 404:
                hint = " (start vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)"
            raise ServerError(f"{self.base_url}{path} {json.dumps(body)}: HTTP {resp.status_code} "
                              f"{resp.text[:300]}{hint}")

    def load_adapter(self, name: str, path: Path) -> None:
        """``POST /v1/load_lora_adapter``: serve the adapter at ``path`` as model ``name``."""
        self._post("/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})

    def unload_adapter(self, name: str) -> None:
        """``POST /v1/unload_lora_adapter``: stop serving adapter ``name``."""
        self._post("/unload_lora_adapter", {"lora_name": name})

    def models(self) -> list[str]:
        """Names served now (``GET /v1/models``): the base and every loaded adapter."""
        try:
            resp = httpx.get(self.base_url + "/models", headers=self._headers, timeout=self.timeout_s)
            resp.raise_for_status()
        except httpx.HTTPError as err:
            raise ServerError(f"{self.base_url}/models: {err}") from err
        return [m["id"] for m in resp.json().get("data", [])]

    def serve_model(self, name: str | None, base_path: Path | None, adapter_path: Path | None) -> str:
        """Make ``name`` servable with no restart (promote/rollback); unloads other threadtune
        adapters. Returns the model name clients send. ``None`` (no live model) means the base."""
        del base_path  # the base is fixed for a vLLM server's lifetime
        if adapter_path is None:
            target = self.base_name
        else:
            target = served_name(name)
            loaded = self.models()
            if target not in loaded:
                self.load_adapter(target, adapter_path)
        for old in self.models():
            if old != target and old != self.base_name and old.startswith("threadtune/"):
                self.unload_adapter(old)
        self.model = target
        return target
