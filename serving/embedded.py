"""The embedded backend: ``transformers serve`` on loopback as a subprocess (no GPU needed).

What this module works around, and why:

- ``transformers serve`` cannot load a PEFT adapter: it reads ``config.json`` of the model folder and
  instantiates ``config.architectures[0]``, and an adapter folder has only ``adapter_config.json``. So
  a live adapter is served as a merged copy (``merge_and_unload``), written once per adapter into
  ``<data_dir>/models/merged/<name>`` (see :func:`merged_model`).
- ``GET /v1/models`` scans the Hugging Face hub cache and answers 500 when there is none, and it never
  lists a model served from a plain folder. So every server gets its own small hub cache (in its work
  dir) holding one repo, ``threadtune/<name>``, whose snapshot links to the model folder's files; the
  server runs with ``HF_HUB_CACHE`` pointing there and ``HF_HUB_OFFLINE=1``, preloads that repo id,
  and ``/v1/models`` lists exactly the served name.
- A pinned server refuses any other model name with 400, so clients must send :attr:`model`.

In-process use (curation, evaluation, the demo)::

    with EmbeddedServer(model_dir, name="base") as server:
        client = ModelClient(server.base_url, server.model)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from serving.errors import ModelNotFound, ServerError
from serving.models import is_hf_folder, offline_env, served_name
from serving.process import HOST, ServerProcess, free_port

STARTUP_TIMEOUT_S = 300.0
_MERGED_MARKER = "threadtune-merged.json"


def server_threads() -> int:
    """CPU threads for a server that shares the machine: half the cores, at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


def transformers_cli() -> str:
    """The ``transformers`` console script of this Python environment."""
    sibling = Path(sys.executable).parent / "transformers"
    if sibling.is_file():
        return str(sibling)
    found = shutil.which("transformers")
    if not found:
        raise ServerError("the `transformers` command is missing; run `pip install 'transformers[serving]'`")
    return found


def publish_to_hub_cache(model_dir: Path, hub_cache: Path, repo_id: str) -> Path:
    """Make ``repo_id`` resolvable offline from ``hub_cache``: a snapshot of symlinks to ``model_dir``.

    This is what lets ``/v1/models`` answer (it scans the hub cache) and list the served name.
    """
    model_dir = Path(model_dir).resolve()
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(str(model_dir).encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    shutil.rmtree(repo, ignore_errors=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for f in model_dir.iterdir():
        if f.is_file():
            (snapshot / f.name).symlink_to(f)
    return snapshot


def merged_model(base_dir: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """A plain HF folder with ``adapter_dir`` merged into ``base_dir`` (made once, atomically).

    Reused when ``out_dir`` already holds a merge of the same adapter files.
    """
    base_dir, adapter_dir = Path(base_dir), Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelNotFound(f"{adapter_dir}: not a PEFT adapter folder (no adapter_config.json); "
                            "retrain it or roll back to another model")
    if not is_hf_folder(base_dir):
        raise ModelNotFound(f"{base_dir}: base model folder missing or incomplete; run `threadtune init`")
    stamp = {"base": str(base_dir.resolve()), "adapter": str(adapter_dir.resolve()),
             "adapter_mtime": max(f.stat().st_mtime for f in adapter_dir.iterdir())}
    marker = out_dir / _MERGED_MARKER
    if marker.is_file() and is_hf_folder(out_dir):
        try:
            if json.loads(marker.read_text()) == stamp:
                return out_dir
        except json.JSONDecodeError:
            pass
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        base = AutoModelForCausalLM.from_pretrained(str(base_dir))
        merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    except Exception as err:  # peft and transformers raise many kinds here
        raise ModelNotFound(f"{adapter_dir}: cannot merge this adapter into {base_dir} ({err}); "
                            "check that it was trained on this base model") from err
    tmp.mkdir(parents=True)
    merged.save_pretrained(tmp)
    tokenizer_src = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_dir
    AutoTokenizer.from_pretrained(str(tokenizer_src)).save_pretrained(tmp)
    (tmp / _MERGED_MARKER).write_text(json.dumps(stamp))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


class EmbeddedServer:
    """``transformers serve`` for one model folder on ``host:port``; ``start()``/``stop()`` or ``with``.

    ``model_path`` is a plain HF folder (the converted base, or :func:`merged_model`'s output).
    ``name`` is the version clients see as ``threadtune/<name>``. ``port=0`` picks a free port.
    """

    def __init__(self, model_path: Path, port: int = 0, *, name: str | None = None,
                 host: str = HOST, work_dir: Path | None = None,
                 continuous_batching: bool = False, startup_timeout_s: float = STARTUP_TIMEOUT_S,
                 extra_env: dict[str, str] | None = None, merged_dir: Path | None = None) -> None:
        self.model_path = Path(model_path)
        self.port = port
        self.host = host
        self.version = name or "base"
        self.model = served_name(name)
        self.continuous_batching = continuous_batching
        self.startup_timeout_s = startup_timeout_s
        self.extra_env = dict(extra_env or {})
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir) if work_dir else None
        self.merged_dir = Path(merged_dir) if merged_dir else None
        self._server: ServerProcess | None = None

    # --- lifecycle --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://host:port/v1``, for :class:`serving.client.ModelClient`."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def log_path(self) -> Path | None:
        """The server's stdout and stderr."""
        return self.work_dir / "server.log" if self.work_dir else None

    def command(self) -> list[str]:
        """The ``transformers serve`` command line (validated by :meth:`start`)."""
        cmd = [transformers_cli(), "serve", self.model, "--host", self.host, "--port", str(self.port),
               "--device", "cpu", "--log-level", "warning"]
        if self.continuous_batching:
            cmd.append("--continuous-batching")
        return cmd

    def validate(self) -> None:
        """Check the model folder and the port before spawning anything."""
        problems = []
        if not is_hf_folder(self.model_path):
            problems.append(f"{self.model_path}: not a model folder (needs config.json and weights); "
                            "run `threadtune init` or give a merged adapter folder")
        if (self.model_path / "adapter_config.json").is_file() and not (self.model_path / "config.json").is_file():
            problems.append(f"{self.model_path}: is a PEFT adapter; serve merged_model(base, adapter, out)")
        if not 0 <= self.port <= 65535:
            problems.append(f"port {self.port}: out of range 0..65535")
        if problems:
            raise ModelNotFound("; ".join(problems))

    def start(self) -> EmbeddedServer:
        """Spawn the server and wait until ``/health`` answers; raises ServerError with its log tail."""
        self.validate()
        if self._server is not None:
            return self
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="threadtune-serve-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port(self.host)
        hub = self.work_dir / "hub"
        publish_to_hub_cache(self.model_path, hub, self.model)
        env = offline_env()
        env.update({"HF_HUB_CACHE": str(hub), "HF_HOME": str(self.work_dir / "hf-home"),
                    "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})
        # The server shares the CPU with the bot, the worker and training. OpenMP threads that
        # spin-wait on an oversubscribed CPU slow generation down by an order of magnitude (measured
        # here: 1 tok/s with 2 threads vs 13 tok/s with 1 on 2 busy cores), so it takes half the
        # cores unless told otherwise.
        env.setdefault("OMP_NUM_THREADS", str(server_threads()))
        env.update(self.extra_env)
        self._server = ServerProcess(f"transformers serve for {self.model_path}", self.command(),
                                     self.base_url, env=env, log_path=self.log_path,
                                     startup_timeout_s=self.startup_timeout_s)
        try:
            self._server.start()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._server.pid if self._server else None

    def alive(self) -> bool:
        """Whether the process runs and ``/health`` answers."""
        return self._server is not None and self._server.alive()

    def stop(self) -> None:
        """Stop the server (SIGTERM to its process group, SIGKILL after 10 s) and clean up."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        if self._own_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    #: Always a server this process started (the Backend protocol's question).
    spawned = True

    def restart(self, model_path: Path | None = None, name: str | None = None) -> EmbeddedServer:
        """Serve another model on the same port (promote and rollback), or the same one again
        after a crash when no model is given."""
        self.stop()
        if model_path is not None:
            self.model_path = Path(model_path)
            self.version = name or "base"
            self.model = served_name(name)
        return self.start()

    def serve_model(self, name: str | None, base_path: Path, adapter_path: Path | None) -> str:
        """Serve model version ``name`` (base plus ``adapter_path``, merged) for promote and rollback:
        a restart when it differs from what runs now. Returns the model name clients send."""
        path = Path(base_path)
        if adapter_path is not None:
            root = self.merged_dir or (self.model_path.parent / "merged")
            path = merged_model(path, Path(adapter_path), root / served_name(name).split("/", 1)[1])
        if path == self.model_path and served_name(name) == self.model and self.alive():
            return self.model
        self.restart(path, name)
        return self.model

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
