"""vLLM serving the live model *merged*, swapped for the next one without dropping a request.

On a CPU, vLLM runs LoRA on fallback kernels that gather every adapter matrix per token, so an
unmerged adapter cost 0.44x the merged model's tokens/s at 32 in flight (README, *vLLM: adapter or
merged*). So on a CPU the live model is served as a plain model: the adapter merged into the base
with peft, once per version, into ``<merged_root>/<version>``, on a vLLM with LoRA off.

A promotion or rollback cannot hot-load into such a server, so it is swapped:

1. the merge is made and a new vLLM is started on a free port, while the old one keeps answering;
2. once the new one answers ``/health``, the proxy (``serving/proxy.py``, on the stable port the
   bot and ``threadtune ask`` use) sends new requests to it;
3. the old one is stopped when the requests it was given have finished (or after ``drain_s``).

A new server that fails to start leaves the old one serving, and the error is raised. Candidate
adapters stay hot-loadable on an adapter server of their own (``threadtune eval --backend vllm``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from serving.errors import ServerError
from serving.models import served_name
from serving.process import free_port
from serving.proxy import Proxy
from serving.vllm import STARTUP_TIMEOUT_S, VllmConfig, VllmServer, validate

#: Seconds an old server is given to finish its requests after a swap (one long answer).
DRAIN_S = 300.0


def swap_cores(current: str, cores: list[int] | None = None) -> str:
    """The engine cores for a server started beside one bound with ``current``.

    vLLM pins its engine's OpenMP threads; a new engine pinned to the cores of a busy one got
    almost no CPU time and never finished starting (seen on 2 cores). ``auto`` takes all cores but
    the last, so the new one takes all but the first, and the one after that ``auto`` again: on 2
    cores the two engines never share one (the HTTP front ends are not pinned)."""
    cores = sorted(os.sched_getaffinity(0)) if cores is None else cores
    if len(cores) < 2 or current != "auto":
        return "auto"
    return ",".join(map(str, cores[1:]))


class MergedVllm:
    """The :class:`serving.backend.Backend` that serves the live model merged, behind a proxy."""

    spawned = True

    def __init__(self, cfg: VllmConfig, name: str | None = None, adapter: Path | None = None, *,
                 merged_root: Path, log_dir: Path, drain_s: float = DRAIN_S,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Serve model ``name`` (``adapter`` merged into ``cfg.base_model``; None: the base).

        ``cfg`` is the vLLM set-up every server reuses; its ``host`` and ``port`` are the proxy's,
        and each server gets a free port, LoRA off, the live model's folder and name."""
        self.cfg = cfg
        self.name, self.adapter = name, adapter
        self.folder: Path | None = None
        self.model = served_name(name)
        self.merged_root = Path(merged_root)
        self.log_dir = Path(log_dir)
        self.drain_s = drain_s
        self.startup_timeout_s = startup_timeout_s
        self.proxy: Proxy | None = None
        self.server: VllmServer | None = None

    @property
    def base_url(self) -> str:
        """The proxy's stable URL (before :meth:`start`: where it will listen)."""
        if self.proxy is not None:
            return self.proxy.base_url
        return f"http://{self.cfg.host}:{self.cfg.port}/v1"

    @property
    def pid(self) -> int | None:
        """The process id of the vLLM serving now."""
        return self.server.pid if self.server else None

    def _folder(self, name: str | None, base: Path, adapter: Path | None) -> Path:
        if adapter is None:
            return Path(base)
        from serving.embedded import merged_model

        return merged_model(Path(base), Path(adapter), self.merged_root / served_name(name).split("/", 1)[1])

    def _spawn(self, name: str | None, folder: Path, *, beside: VllmServer | None = None) -> VllmServer:
        """A started vLLM for ``folder``; ``beside``: the busy server it will replace, whose engine
        cores it avoids where it can (see :func:`swap_cores`)."""
        bind = swap_cores(beside.cfg.cpu_threads_bind) if beside is not None and beside.cfg else "auto"
        cfg = replace(self.cfg, base_model=Path(folder), adapters=[], enable_lora=False,
                      served_name=served_name(name), port=free_port(self.cfg.host), cpu_threads_bind=bind)
        log = self.log_dir / f"vllm-{served_name(name).split('/', 1)[1]}.log"
        return VllmServer.spawn_config(cfg, log_path=log, startup_timeout_s=self.startup_timeout_s).start()

    def start(self) -> MergedVllm:
        """Merge the live adapter (once per version), start its vLLM and the proxy in front."""
        validate(replace(self.cfg, port=self.cfg.port or 1))  # before the merge and the spawn (0: any port)
        if self.server is None:
            self.folder = self._folder(self.name, self.cfg.base_model, self.adapter)
            self.server = self._spawn(self.name, self.folder)
        if self.proxy is not None:
            self.proxy.switch(self.server.base_url, self.model)
            return self
        try:
            self.proxy = Proxy(self.server.base_url, model=self.model, host=self.cfg.host,
                               port=self.cfg.port).start()
        except OSError as err:
            self.stop()
            raise ServerError(f"cannot listen on {self.cfg.host}:{self.cfg.port}: {err}; pick another "
                              "THREADTUNE_SERVING_PORT") from err
        return self

    def serve_model(self, name: str | None, base_path: Path, adapter_path: Path | None) -> str:
        """Serve ``name`` from now on: merged into ``base_path`` (or the base itself), on a new vLLM
        swapped in without dropping a request. A new server that fails to start raises and leaves
        the old one serving. Returns the model name clients send."""
        folder = self._folder(name, base_path, adapter_path)
        if self.proxy is None or self.server is None:
            self.name, self.adapter, self.folder = name, adapter_path, None
            self.model = served_name(name)
            self.cfg = replace(self.cfg, base_model=Path(base_path))
            self.start()
            return self.model
        if (name, folder) == (self.name, self.folder):
            return self.model
        new = self._spawn(name, folder, beside=self.server)
        old, self.server = self.server, new
        self.name, self.adapter, self.folder, self.model = name, adapter_path, folder, served_name(name)
        self.cfg = replace(self.cfg, base_model=Path(base_path))  # what a restart serves again
        previous = self.proxy.switch(new.base_url, self.model)
        self.proxy.drain(previous, self.drain_s)
        old.stop()
        return self.model

    def alive(self) -> bool:
        """Whether the proxy's current vLLM runs and answers ``/health``."""
        return self.proxy is not None and self.server is not None and self.server.alive()

    def restart(self) -> MergedVllm:
        """Start the live model's vLLM again (after a crash) and switch the proxy to it."""
        dead, self.server = self.server, None
        if dead is not None:
            dead.stop()
        return self.start()

    def stop(self) -> None:
        """Stop the vLLM and the proxy."""
        server, self.server = self.server, None
        proxy, self.proxy = self.proxy, None
        if server is not None:
            server.stop()
        if proxy is not None:
            proxy.stop()
