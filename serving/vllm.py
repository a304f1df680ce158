"""The vLLM backend: base model + LoRA adapters, adapters hot-loaded with no restart, on CPU or GPU.

vLLM pins its own torch and transformers, so it lives in its own environment (``.venv-vllm``,
made by ``make test`` / ``make demo`` from ``requirements/vllm-cpu.lock`` on a machine without CUDA,
``requirements/vllm-cuda.lock`` with it), and threadtune only speaks HTTP to it. Two modes:

- **spawn**: :func:`build_command` builds and validates
  ``python -m vllm.entrypoints.openai.api_server --model BASE --enable-lora --lora-modules name=path
  … --max-lora-rank R --max-loras K`` before anything starts (the CPU build's ``vllm`` console script
  asks for the version of a distribution named ``vllm`` and fails, so the module is run);
  :class:`VllmServer` runs it with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` and, on a CPU, the
  settings of :func:`cpu_env`.
- **attach**: ``VllmServer.attach(base_url)`` talks to a server that already runs (a GPU host,
  Kubernetes) started with that same variable.

Promotion hot-loads the new adapter with ``POST /v1/load_lora_adapter`` (``{"lora_name",
"lora_path"}``), and only once it is loaded unloads the old one with ``POST /v1/unload_lora_adapter``
(``{"lora_name"}``): a refused adapter leaves the old one serving. vLLM may keep serving stale
weights when an adapter is loaded again under a name it already used (vllm issue #42125), so a
server never takes a name it has served before with other weights (:func:`fingerprint`).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serving.adapters import LORA_RANKS, adapter_rank, check_adapter, fingerprint
from serving.client import health
from serving.models import served_name
from serving.errors import ServerError, ServingError
from serving.models import offline_env
from serving.process import ServerProcess

RUNTIME_LORA_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
BASE_NAME = served_name(None)
#: The project's own vLLM environment (``make test`` / ``make demo`` build it).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PYTHON = PROJECT_ROOT / ".venv-vllm" / "bin" / "python"
#: The OpenAI-compatible server module (the console script fails in the ``vllm-cpu`` build).
API_SERVER = "vllm.entrypoints.openai.api_server"
STARTUP_TIMEOUT_S = 600.0
#: Where tcmalloc usually lies (Debian/Ubuntu ``libtcmalloc-minimal4``, RHEL ``gperftools-libs``).
TCMALLOC_PATHS = ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
                  "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
                  "/usr/lib64/libtcmalloc_minimal.so.4", "/usr/lib/libtcmalloc_minimal.so.4")


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
    #: False: no LoRA at all (a merged model; LoRA-enabled vLLM pays for it even on plain requests).
    enable_lora: bool = True
    served_name: str = BASE_NAME
    #: The Python of the vLLM environment (``.venv-vllm/bin/python``).
    python: Path = DEFAULT_PYTHON
    #: Longest prompt + answer in tokens; also bounds the KV cache a request may take.
    max_model_len: int = 2048
    #: ``auto`` (bfloat16 where the model says so), or ``bfloat16``/``float16``/``float32``.
    dtype: str = "bfloat16"
    #: CPU only: GiB of memory for the KV cache (``VLLM_CPU_KVCACHE_SPACE``).
    cpu_kvcache_gib: int = 1
    #: CPU only: the cores of the engine's OpenMP threads (``VLLM_CPU_OMP_THREADS_BIND``): ``auto``
    #: (all but one, which is left to the HTTP front end) or a list such as ``1`` or ``1-3``.
    cpu_threads_bind: str = "auto"
    extra_args: list[str] = field(default_factory=list)


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
    if not Path(cfg.python).is_file():
        problems.append(f"{cfg.python}: no vLLM environment; run `make install-vllm` (README "
                        "'Serving with vLLM') or attach to a running server with --url")
    if cfg.max_model_len < 256:
        problems.append(f"max model length {cfg.max_model_len}: must be at least 256")
    if cfg.cpu_kvcache_gib < 1:
        problems.append(f"CPU KV cache {cfg.cpu_kvcache_gib} GiB: must be at least 1")
    if cfg.adapters and not cfg.enable_lora:
        problems.append("adapters given but LoRA is off: serve them with LoRA enabled, or merge them")
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


def build_command(cfg: VllmConfig) -> list[str]:
    """The validated command line that starts vLLM's OpenAI-compatible server."""
    validate(cfg)
    cmd = [str(cfg.python), "-m", API_SERVER, "--model", str(cfg.base_model),
           "--host", cfg.host, "--port", str(cfg.port), "--served-model-name", cfg.served_name,
           "--max-model-len", str(cfg.max_model_len), "--dtype", cfg.dtype,
           "--disable-uvicorn-access-log"]
    if cfg.enable_lora:
        cmd += ["--enable-lora", "--max-lora-rank", str(cfg.max_lora_rank), "--max-loras", str(cfg.max_loras)]
    if cfg.adapters:
        cmd += ["--lora-modules", *(f"{a.name}={a.path}" for a in cfg.adapters)]
    return cmd + list(cfg.extra_args)


def has_cuda() -> bool:
    """Whether an NVIDIA GPU answers ``nvidia-smi`` (what set-up uses to pick the vLLM build)."""
    try:
        return subprocess.run(["nvidia-smi"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def tcmalloc() -> str | None:
    """A system tcmalloc to preload (vLLM recommends it on CPU), or None."""
    return next((p for p in TCMALLOC_PATHS if Path(p).is_file()), None)


def cpu_env(kvcache_gib: int, base: dict[str, str] | None = None, *, threads_bind: str = "auto") -> dict[str, str]:
    """The settings vLLM's CPU build reads, for a machine shared with the bot and training.

    - ``VLLM_CPU_KVCACHE_SPACE``: GiB for the KV cache (vLLM's default takes a share of RAM);
    - ``VLLM_CPU_OMP_THREADS_BIND``: ``threads_bind`` (``auto``) unless set: vLLM keeps one core
      for its HTTP front end and binds one OpenMP thread to each other core (a server swapped in
      beside a busy one gets other cores: ``serving/swap.py``);
    - ``LD_PRELOAD``: tcmalloc when the system has it (vLLM itself preloads torch's libgomp).
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kvcache_gib))
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", threads_bind)
    lib = tcmalloc()
    if lib and "tcmalloc" not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = ":".join(filter(None, [lib, env.get("LD_PRELOAD")]))
    return env


def vllm_env(base: dict[str, str] | None = None, *, cpu_kvcache_gib: int | None = None,
             cpu_threads_bind: str = "auto") -> dict[str, str]:
    """Offline, with runtime LoRA loading allowed; on a CPU also :func:`cpu_env`."""
    env = offline_env(base)
    env.update(RUNTIME_LORA_ENV)
    env.update({"PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false",
                "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"})
    env.pop("PYTHONPATH", None)  # the main environment's packages must not shadow vLLM's
    if cpu_kvcache_gib is not None:
        env = cpu_env(cpu_kvcache_gib, env, threads_bind=cpu_threads_bind)
    return env


def vllm_python(configured: Path | str | None = None) -> Path:
    """The vLLM environment's Python: ``configured`` when set, else ``.venv-vllm`` in the project."""
    return Path(configured) if configured else DEFAULT_PYTHON


def vllm_available(python: Path = DEFAULT_PYTHON) -> bool:
    """Whether the vLLM environment exists (what ``--backend auto`` checks; CPU or GPU alike)."""
    return Path(python).is_file()


class VllmServer:
    """A vLLM server we spawned, or one we attach to by base URL; loads and unloads adapters."""

    def __init__(self, base_url: str, *, cfg: VllmConfig | None = None, api_key: str | None = None,
                 timeout_s: float = 120.0, log_path: Path | None = None,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.cfg = cfg
        self.base_name = cfg.served_name if cfg else BASE_NAME
        #: The name clients send now: the base, or the adapter :meth:`serve_model` made live.
        self.model = cfg.adapters[-1].name if cfg and cfg.adapters else self.base_name
        self.timeout_s = timeout_s
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._server: ServerProcess | None = None
        #: served name -> fingerprint of the weights this server has served under it
        self._bound: dict[str, str] = {}
        #: served name -> folder of the adapters loaded now (what a restart brings back)
        self._paths: dict[str, Path] = {}
        for a in cfg.adapters if cfg else []:
            self._bound[a.name] = fingerprint(a.path)
            self._paths[a.name] = Path(a.path)

    @classmethod
    def attach(cls, base_url: str, *, api_key: str | None = None) -> VllmServer:
        """Talk to a vLLM server that is already running (it must have runtime LoRA updating on)."""
        return cls(base_url, api_key=api_key)

    @classmethod
    def spawn_config(cls, cfg: VllmConfig, *, log_path: Path | None = None,
                     startup_timeout_s: float = STARTUP_TIMEOUT_S) -> VllmServer:
        """A server to be started by :meth:`start` from ``cfg``."""
        return cls(f"http://{cfg.host}:{cfg.port}/v1", cfg=cfg, log_path=log_path,
                   startup_timeout_s=startup_timeout_s)

    # --- lifecycle --------------------------------------------------------------------------
    @property
    def spawned(self) -> bool:
        """Whether this process starts the server (False: attached to one running elsewhere)."""
        return self.cfg is not None

    @property
    def pid(self) -> int | None:
        """The process id of a server we spawned, while it runs."""
        return self._server.pid if self._server else None

    def start(self) -> VllmServer:
        """Spawn vLLM (spawn mode) and wait for ``/health``; in attach mode, just check it."""
        if self.cfg is None:
            if not health(self.base_url, timeout=5):
                raise ServerError(f"{self.base_url}: no vLLM server answers /health; start it or fix "
                                  "THREADTUNE_SERVING_URL")
            return self
        if self._server is not None and self._server.running():
            return self
        cmd = build_command(self.cfg)
        if self.log_path is None:
            self.log_path = Path(self.cfg.base_model).parent / "vllm.log"
        env = vllm_env(cpu_kvcache_gib=None if has_cuda() else self.cfg.cpu_kvcache_gib,
                       cpu_threads_bind=self.cfg.cpu_threads_bind)
        self._server = ServerProcess("vLLM", cmd, self.base_url, env=env, log_path=self.log_path,
                                     startup_timeout_s=self.startup_timeout_s, stop_grace_s=30.0)
        self._server.start()
        return self

    def restart(self) -> VllmServer:
        """Start a spawned server again (after a crash) with what it served: the adapters it had
        loaded come back through ``--lora-modules`` under the same names and weights."""
        if self.cfg is None:
            return self.start()
        self.stop()
        self.cfg = VllmConfig(**{**self.cfg.__dict__,
                                 "adapters": [Adapter(n, p) for n, p in self._paths.items()]})
        return self.start()

    def running(self) -> bool:
        """Whether the spawned process runs (attach mode: whether ``/health`` answers)."""
        if self.cfg is None:
            return health(self.base_url)
        return self._server is not None and self._server.running()

    def alive(self) -> bool:
        """Whether the server answers ``/health`` (and, when spawned, its process runs)."""
        return self.running() and health(self.base_url)

    def stop(self) -> None:
        """Stop a spawned server (TERM, then KILL); an attached one is left running."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

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
            if resp.status_code == 404 and "lora" in path and "cannot be found" not in resp.text:
                hint = " (start vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)"
            raise ServerError(f"{self.base_url}{path} {json.dumps(body)}: HTTP {resp.status_code} "
                              f"{_message(resp)}{hint}")

    def load_adapter(self, name: str, path: Path) -> None:
        """``POST /v1/load_lora_adapter``: serve the adapter at ``path`` as model ``name``.

        Checked first (folder, rank, base model); a name this server has served with other weights
        is refused, since vLLM may keep the old weights under it (vllm issue #42125).
        """
        path = Path(path)
        if self.cfg is not None:
            check_adapter(path, max_lora_rank=self.cfg.max_lora_rank, base_model=self.cfg.base_model)
        else:
            check_adapter(path, max_lora_rank=max(LORA_RANKS))
        digest = fingerprint(path)
        if self._bound.get(name, digest) != digest:
            raise ServingError(f"adapter name {name!r} was served by this vLLM server with other "
                               f"weights; vLLM may keep serving the old ones under a reused name "
                               f"(vllm issue #42125). Register {path} as a new model version, or "
                               "restart the server")
        self._post("/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
        self._bound[name] = digest
        self._paths[name] = path

    def unload_adapter(self, name: str) -> None:
        """``POST /v1/unload_lora_adapter``: stop serving adapter ``name``."""
        self._post("/unload_lora_adapter", {"lora_name": name})
        self._paths.pop(name, None)

    def models(self) -> list[str]:
        """Names served now (``GET /v1/models``): the base and every loaded adapter."""
        try:
            resp = httpx.get(self.base_url + "/models", headers=self._headers, timeout=self.timeout_s)
            resp.raise_for_status()
        except httpx.HTTPError as err:
            raise ServerError(f"{self.base_url}/models: {err}") from err
        return [m["id"] for m in resp.json().get("data", [])]

    def serve_model(self, name: str | None, base_path: Path | None, adapter_path: Path | None) -> str:
        """Make ``name`` servable with no restart (promote/rollback): the new adapter is loaded
        first, then other threadtune adapters are unloaded. A refused load raises and leaves what
        was serving untouched. Returns the model name clients send; ``None`` means the base."""
        del base_path  # the base is fixed for a vLLM server's lifetime
        if adapter_path is None:
            target = self.base_name
        else:
            target = served_name(name)
            if target not in self.models():
                self.load_adapter(target, Path(adapter_path))
            elif self._bound.get(target, fingerprint(adapter_path)) != fingerprint(adapter_path):
                raise ServingError(f"adapter name {target!r} is served with other weights than "
                                   f"{adapter_path} (vllm issue #42125); register it as a new version")
        for old in self.models():
            if old != target and old != self.base_name and old.startswith("threadtune/"):
                self.unload_adapter(old)
        self.model = target
        return target


def _message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    inner = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(inner, dict):
        return str(inner.get("message") or inner.get("detail") or inner)[:500]
    return str(inner)[:500]
