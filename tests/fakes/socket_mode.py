"""A fake Socket Mode server on 127.0.0.1 (port 0), as bolt-python's own tests do it.

The fake Web API answers ``apps.connections.open`` (app-level token) with this server's ``ws://`` URL;
the bot's real ``SocketModeHandler`` connects, gets ``hello``, and then receives the envelopes a test
sends (``events_api``, ``slash_commands``, ``interactive``). Every ack the bot sends back is recorded
by ``envelope_id``. :meth:`FakeSocketMode.drop` closes the socket as Slack does on a refresh, and
the client is expected to open a new one.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

_envelopes = itertools.count(1)


class FakeSocketMode:
    """The WebSocket side of Socket Mode."""

    def __init__(self, app_id: str = "A0FAKE") -> None:
        self.app_id = app_id
        self.acks: dict[str, dict[str, Any]] = {}
        self.hellos = 0  # connections greeted so far
        self._open: list[ServerConnection] = []
        self._cond = threading.Condition()
        self._server: Any = None
        self.port = 0

    def start(self) -> FakeSocketMode:
        self._server = serve(self._serve, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-socket-mode").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    @property
    def url(self) -> str:
        """What ``apps.connections.open`` answers."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket=fake-{self.hellos + 1}"

    def _serve(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1,
                            "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                            "connection_info": {"app_id": self.app_id}}))
        with self._cond:
            self._open.append(ws)
            self.hellos += 1
            self._cond.notify_all()
        try:
            for raw in ws:
                message = json.loads(raw)
                if isinstance(message, dict) and message.get("envelope_id"):
                    with self._cond:
                        self.acks[message["envelope_id"]] = message
                        self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if ws in self._open:
                    self._open.remove(ws)

    def wait_connected(self, hellos: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``hellos`` connections were greeted and one is open."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.hellos >= hellos and self._open, timeout):
                raise AssertionError(f"{self.hellos} Socket Mode connections, wanted {hellos}")

    def send(self, kind: str, payload: dict[str, Any], *, envelope_id: str | None = None,
             retry_attempt: int = 0) -> str:
        """Send one envelope (``events_api``, ``slash_commands`` or ``interactive``); returns its id."""
        envelope_id = envelope_id or f"env-{next(_envelopes):06d}"
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                    "accepts_response_payload": kind != "events_api",
                    "retry_attempt": retry_attempt, "retry_reason": "timeout" if retry_attempt else ""}
        with self._cond:
            if not self._cond.wait_for(lambda: self._open, 10.0):
                raise AssertionError("no Socket Mode connection is open")
            ws = self._open[-1]
        ws.send(json.dumps(envelope))
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 3.0) -> dict[str, Any]:
        """The bot's ack of ``envelope_id``; fails unless it arrives within ``timeout`` (Slack: 3 s)."""
        start = time.monotonic()
        with self._cond:
            if not self._cond.wait_for(lambda: envelope_id in self.acks, timeout):
                raise AssertionError(f"no ack for {envelope_id} within {timeout} s")
        assert time.monotonic() - start <= timeout
        return self.acks[envelope_id]

    def drop(self) -> None:
        """Close every open connection, as Slack does when it refreshes one."""
        with self._cond:
            sockets = list(self._open)
        for ws in sockets:
            ws.close(code=1001, reason="refresh")
