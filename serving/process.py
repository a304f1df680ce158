"""One way to run a child process that threadtune owns: a model server or a training run.

- spawned in its own process group (so a stop reaches every process it started: vLLM's engine
  core, accelerate's ranks, data-loader workers);
- tied to its parent with ``PR_SET_PDEATHSIG``: a crashed CLI, demo or worker leaves no model
  server or training run eating the CPU;
- :meth:`ServerProcess.wait_healthy` polls ``/health`` and, when the child exits or the deadline
  passes, raises :class:`ServerError` with the tail of its log;
- :func:`stop_process_group` sends SIGTERM to the group, SIGKILL after a grace period, and reaps;
- a server runs under ``serving/group_guard.py`` (:func:`guarded`), the leader of its group, which
  kills what the server left behind when it exits, and the whole group when threadtune dies.

The embedded server, vLLM and the training worker all use this module.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from serving.client import health
from serving.errors import ServerError

HOST = "127.0.0.1"
GUARD = Path(__file__).with_name("group_guard.py")


def free_port(host: str = HOST) -> int:
    """A free TCP port on ``host`` (the kernel picks it; it may be taken again before use)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:  # runs in the child between fork and exec
    """Ask Linux to SIGKILL this child when the process that started it dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None,
          stdout: IO[Any] | int | None = subprocess.DEVNULL, stderr: IO[Any] | int | None = subprocess.STDOUT,
          text: bool = False, tie: bool | None = None) -> subprocess.Popen:
    """Start ``cmd`` in its own process group, tied to this process's life.

    PDEATHSIG fires when the *thread* that forked exits, not the process. By default (``tie``
    None) only a child started from the main thread is tied: a server started from a worker thread
    would die with that thread. ``tie=True`` suits a caller that waits for the child on the thread
    that started it (the training worker).
    """
    if tie is None:
        tie = threading.current_thread() is threading.main_thread()
    return subprocess.Popen(list(cmd), env=env, cwd=None if cwd is None else str(cwd), stdout=stdout,
                            stderr=stderr, stdin=subprocess.DEVNULL, text=text,
                            start_new_session=True, preexec_fn=die_with_parent if tie else None)


def stop_process_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace_s``, and reap the child.

    Stragglers the child started (and left in its group) get SIGKILL too.
    """
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def guarded(cmd: Sequence[str], grace_s: float, *, tie: bool | None = None) -> list[str]:
    """``cmd`` run under ``serving/group_guard.py``: whatever it starts dies with it (vLLM's engine
    core outlived a killed API server before), and, tied (by default when called from the main
    thread, as :func:`spawn` ties), with this process too. Spawn the result with ``tie=False``: the
    guard ties itself, with SIGTERM, so that it can take the whole group down."""
    if tie is None:
        tie = threading.current_thread() is threading.main_thread()
    return [sys.executable, str(GUARD), f"{grace_s:g}", "1" if tie else "0", "--", *cmd]


def tail(path: Path | None, n: int = 30) -> str:
    """The last ``n`` lines of a log file ('' when there is none)."""
    if not path or not Path(path).is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64_000))
        lines = f.read().decode(errors="replace").splitlines()
    return "\n".join(lines[-n:])


class ServerProcess:
    """An HTTP server child: ``start()`` spawns ``cmd`` with its output in ``log_path`` and waits
    for ``GET /health`` at ``base_url``; ``stop()`` ends its whole process group."""

    def __init__(self, what: str, cmd: Sequence[str], base_url: str, *, env: dict[str, str],
                 log_path: Path, startup_timeout_s: float, stop_grace_s: float = 10.0) -> None:
        self.what = what
        self.cmd = list(cmd)
        self.base_url = base_url
        self.env = env
        self.log_path = Path(log_path)
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self.proc.pid if self.proc is not None else None

    def start(self) -> ServerProcess:
        """Spawn and wait until healthy; on failure the child is stopped and ServerError raised."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = spawn(guarded(self.cmd, self.stop_grace_s), env=self.env, stdout=log, tie=False)
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self) -> None:
        """Poll ``/health`` until it answers 200; raise with the log tail when the child exits or
        the startup deadline passes."""
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            proc = self.proc
            if proc is None or proc.poll() is not None:
                code = proc.returncode if proc else "?"
                raise ServerError(f"{self.what} exited with code {code} before it was ready "
                                  f"(log: {self.log_path}):\n{self.log_tail()}")
            if health(self.base_url, timeout=1.0):
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{self.what} not healthy at {self.base_url} after "
                                  f"{self.startup_timeout_s:g} s (log: {self.log_path}):\n{self.log_tail()}")
            time.sleep(0.25)

    def running(self) -> bool:
        """Whether the child process still runs (it may not answer yet)."""
        return self.proc is not None and self.proc.poll() is None

    def alive(self) -> bool:
        """Whether the child runs and ``/health`` answers."""
        return self.running() and health(self.base_url)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; safe to call twice."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process_group(proc, self.stop_grace_s)

    def log_tail(self, n: int = 30) -> str:
        """The last ``n`` lines of the child's log."""
        return tail(self.log_path, n)
