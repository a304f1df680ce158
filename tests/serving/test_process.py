"""serving/process.py: the one helper that spawns, waits for and stops the processes threadtune owns."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from serving.errors import ServerError
from serving.process import ServerProcess, free_port, spawn, stop_process_group

ROOT = Path(__file__).resolve().parents[2]

HEALTHY = textwrap.dedent("""
    import http.server, sys
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404); self.end_headers()
        def log_message(self, *a): pass
    print("listening", flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
""")
STUBBORN = textwrap.dedent("""
    import signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring TERM", flush=True)
    time.sleep(600)
""")


def server(tmp_path, code: str, *, timeout: float = 30.0, grace: float = 10.0) -> ServerProcess:
    port = free_port()
    return ServerProcess("test server", [sys.executable, "-c", code, str(port)], f"http://127.0.0.1:{port}/v1",
                         env=dict(os.environ), log_path=tmp_path / "server.log", startup_timeout_s=timeout,
                         stop_grace_s=grace)


def test_a_healthy_server_starts_and_stops(tmp_path):
    s = server(tmp_path, HEALTHY).start()
    pid = s.pid
    assert s.alive() and os.getpgid(pid) == pid  # its own process group
    s.stop()
    assert s.pid is None and not s.alive()
    s.stop()  # twice is fine


def test_a_child_that_exits_at_start_raises_with_its_log_tail(tmp_path):
    with pytest.raises(ServerError, match=r"exited with code 3 before it was ready(.|\n)*boom: no model"):
        server(tmp_path, "import sys; print('boom: no model'); sys.exit(3)").start()


def test_a_child_that_never_gets_healthy_is_stopped_at_the_deadline(tmp_path):
    s = server(tmp_path, "import time; print('loading forever', flush=True); time.sleep(600)", timeout=1.5)
    with pytest.raises(ServerError, match=r"not healthy(.|\n)*loading forever"):
        s.start()
    assert s.proc is None


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path):
    log = open(tmp_path / "log", "wb")
    proc = spawn([sys.executable, "-c", STUBBORN], stdout=log)
    while b"ignoring" not in (tmp_path / "log").read_bytes():
        assert proc.poll() is None
        time.sleep(0.05)
    stop_process_group(proc, grace_s=0.5)
    assert proc.returncode == -9


#: A server that starts an engine process of its own first, as vLLM's API server starts EngineCore.
WITH_ENGINE = textwrap.dedent("""
    import os, subprocess, sys, time
    engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(f"server {os.getpid()} engine {engine.pid}", flush=True)
""") + HEALTHY


def pids_in_log(path) -> tuple[int, int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in path.read_text().splitlines():
            if line.startswith("server "):
                _, server_pid, _, engine_pid = line.split()
                return int(server_pid), int(engine_pid)
        time.sleep(0.05)
    raise AssertionError(f"no pids in {path}")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_dead(pids, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_stop_leaves_no_process_of_the_server_group(tmp_path):
    from serving.group_guard import group_members

    s = server(tmp_path, WITH_ENGINE).start()
    pgid = s.pid
    server_pid, engine_pid = pids_in_log(tmp_path / "server.log")
    assert {pgid, server_pid, engine_pid} <= set(group_members(pgid))
    s.stop()
    assert wait_dead([server_pid, engine_pid]) == [] and group_members(pgid) == []


def test_a_server_killed_alone_takes_its_engine_down(tmp_path):
    """vLLM's EngineCore outlived a killed API server: the guard kills what the server left."""
    s = server(tmp_path, WITH_ENGINE).start()
    server_pid, engine_pid = pids_in_log(tmp_path / "server.log")
    os.kill(server_pid, signal.SIGKILL)
    assert wait_dead([engine_pid]) == []
    assert s.proc.wait(15) == 128 + signal.SIGKILL and not s.running()
    s.stop()


def test_a_dead_parent_takes_the_server_and_its_engine_down(tmp_path):
    """threadtune killed (SIGKILL): no server, engine or guard is left eating the CPU."""
    import subprocess

    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from serving.process import ServerProcess, free_port
        port = free_port()
        s = ServerProcess("t", [sys.executable, "-c", {WITH_ENGINE!r}, str(port)], f"http://127.0.0.1:{{port}}/v1",
                          env=dict(os.environ), log_path=__import__("pathlib").Path({str(tmp_path / "server.log")!r}),
                          startup_timeout_s=30).start()
        print(s.pid, flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    guard = int(parent.stdout.readline())
    server_pid, engine_pid = pids_in_log(tmp_path / "server.log")
    parent.kill()
    parent.wait()
    assert wait_dead([guard, server_pid, engine_pid]) == []
