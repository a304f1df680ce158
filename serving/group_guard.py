"""Run a server so that no process it starts outlives it: ``python group_guard.py GRACE TIE -- CMD…``

vLLM's API server starts its engine (``EngineCore``) as a child process of its own. When the API
server dies (killed, out of memory), or threadtune dies and ``PR_SET_PDEATHSIG`` kills the server,
that engine would be left running, holding its memory and a core. This guard is the leader of the
server's process group and stays in it:

- it starts ``CMD`` in its own group and waits for it;
- when ``CMD`` exits, for any reason, it kills every other process of the group (what ``CMD`` left
  behind) and exits with ``CMD``'s code (128 + the signal, when a signal ended it);
- on SIGTERM or SIGINT it passes SIGTERM to the group, waits up to ``GRACE`` seconds, then kills
  whatever is left;
- with ``TIE`` 1 it asks Linux for SIGTERM when the process that started it dies, so a crashed
  threadtune takes the server and its engine down with it.

Standard library only: it runs with any Python, before and apart from the server's environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def group_members(pgid: int) -> list[int]:
    """Process ids of the live (not zombie) processes in process group ``pgid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, …
            found.append(int(stat.parent.name))
    return found


def signal_others(sig: int) -> None:
    """Send ``sig`` to every process of this group except this one."""
    me = os.getpid()
    for pid in group_members(os.getpgid(0)):
        if pid != me:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def tie_to_parent() -> None:
    """SIGTERM to this process when its parent dies (Linux ``PR_SET_PDEATHSIG``)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: group_guard.py GRACE_S TIE -- CMD…", file=sys.stderr)
        return 2
    grace, tie, cmd = float(argv[0]), argv[1] == "1", argv[3:]
    parent = os.getppid()
    if tie:
        tie_to_parent()
        if os.getppid() != parent:  # the parent died before the tie took
            return 143
    stopping: list[float] = []

    def stop(signum: int, frame: object) -> None:
        if not stopping:
            stopping.append(time.monotonic())
            signal_others(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    child = subprocess.Popen(cmd, preexec_fn=tie_to_parent)  # a guard killed alone stops it too
    code: int | None = None
    while code is None:
        try:
            code = child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if stopping and time.monotonic() - stopping[0] > grace:
                break
    signal_others(signal.SIGKILL)  # the engine and whatever else the server left behind
    if code is None:
        child.wait()
        code = child.returncode
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
