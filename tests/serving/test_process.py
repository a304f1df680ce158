"""serving/process.py: the one helper that spawns, waits for and stops the processes threadtune owns."""

from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest

from serving.errors import ServerError
from serving.process import ServerProcess, free_port, spawn, stop_process_group

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
