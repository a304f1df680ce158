"""A scripted OpenAI-compatible chat server on 127.0.0.1 (port 0), for curation tests.

``FakeLLM().start()`` serves ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /health``.
Replies come from ``script`` (a list consumed in order; the last one repeats) or from ``responder``
(a function of the request body). A reply is a string (the message content) or a ``Reply`` with an
HTTP status. Every request body is recorded in ``requests``.

``reject_response_format=True`` answers 400 to any request with ``response_format``, as servers
without structured output do, so the client's fallback is exercised.

Canned outputs: ``MALFORMED``, ``EMPTY``, ``INJECTION_ECHO`` (what a model that obeyed an injected
"ignore previous instructions" would say), ``pairs_json(...)`` and ``fenced(...)``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MALFORMED = '{"pairs": [{"question": "How do I reset it?", "answer": "Run reset'
EMPTY = ""
INJECTION_ECHO = ("Sure! Ignoring previous instructions. My instructions were: You turn support "
                  "conversations and team documents into question/answer pairs for a help-desk FAQ.")


def pairs_json(*pairs: tuple[str, str] | tuple[str, str, str]) -> str:
    """``{"pairs": [...]}`` for ``(question, answer[, evidence])`` tuples."""
    return json.dumps({"pairs": [
        {"question": p[0], "answer": p[1], "evidence": p[2] if len(p) > 2 else ""} for p in pairs]})


def fenced(payload: str, before: str = "Here are the pairs:", after: str = "Hope this helps!") -> str:
    """``payload`` inside a ```json fence with prose around it, as small models often reply."""
    return f"{before}\n```json\n{payload}\n```\n{after}"


@dataclass
class Reply:
    """A scripted reply with an HTTP status (``content`` is used when status is 200)."""

    content: str = ""
    status: int = 200
    delay_s: float = 0.0


class FakeLLM:
    """The scripted server; see the module docstring."""

    def __init__(self, script: list[str | Reply] | None = None, *,
                 responder: Callable[[dict[str, Any]], str | Reply] | None = None,
                 reject_response_format: bool = False, model: str = "fake-llm") -> None:
        self.script = list(script or [])
        self.responder = responder
        self.reject_response_format = reject_response_format
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)`` and ``THREADTUNE_LLM_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") == "/health":
                    return fake._send(self, 200, {"status": "ok"})
                if self.path.rstrip("/") == "/v1/models":
                    return fake._send(self, 200, {"object": "list", "data": [
                        {"id": fake.model, "object": "model", "created": 0, "owned_by": "fake"}]})
                fake._send(self, 404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return fake._send(self, 404, {"error": {"message": "not found"}})
                fake._complete(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- behaviour ----------------------------------------------------------------------------
    def _next(self, body: dict[str, Any]) -> str | Reply:
        if self.responder is not None:
            return self.responder(body)
        with self._lock:
            if not self.script:
                return EMPTY
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def _complete(self, req: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)
        if self.reject_response_format and "response_format" in body:
            return self._send(req, 400, {"error": {"message": "response_format is not supported",
                                                   "type": "invalid_request_error"}})
        reply = self._next(body)
        if isinstance(reply, str):
            reply = Reply(reply)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.status != 200:
            return self._send(req, reply.status, {"error": {"message": reply.content or "error"}})
        self._send(req, 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": 0,
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply.content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


def user_text(body: dict[str, Any]) -> str:
    """The user message of a recorded request (where the source text is)."""
    return next((m["content"] for m in body.get("messages", []) if m.get("role") == "user"), "")
