"""A scripted OpenAI-compatible server on 127.0.0.1 (port 0): the curation LLM, the model server
the bot answers with, and a stand-in for vLLM's runtime LoRA API.

``FakeLLM(script).start()`` serves ``POST /v1/chat/completions`` (JSON, or SSE with ``stream``),
``GET /v1/models``, ``GET /health`` and vLLM's LoRA endpoints. Replies come from ``script`` (a
string, or a list consumed in order whose last item repeats) or from ``responder`` (a function of
the request body). A reply is a string (the message content) or a ``Reply`` with an HTTP status.
``requests`` records every chat body, ``calls`` every ``(method, path, body)``.

Behaviour switches: ``reject_response_format`` answers 400 to ``response_format``, as servers
without structured output do; ``pinned`` refuses model names it does not serve, as ``transformers
serve`` does; ``delay_s`` (before the first byte), ``token_delay_s`` (between streamed chunks);
``fail_status``/``fail_times`` fail the next chats.

vLLM's documented runtime LoRA endpoints, checked as vLLM checks them:
- ``POST /v1/load_lora_adapter`` ``{"lora_name", "lora_path"}``: 200, or 400 when the name is loaded
  or a field is missing;
- ``POST /v1/unload_lora_adapter`` ``{"lora_name"}``: 200, or 404 when no such adapter is loaded.
Both answer 404 unless ``runtime_lora`` is on (VLLM_ALLOW_RUNTIME_LORA_UPDATING unset).

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

    def __init__(self, script: str | list[str | Reply] | None = None, *,
                 responder: Callable[[dict[str, Any]], str | Reply] | None = None,
                 reject_response_format: bool = False, model: str = "fake-llm",
                 served: list[str] | None = None, runtime_lora: bool = True) -> None:
        self.script: list[str | Reply] = [script] if isinstance(script, str) else list(script or [])
        self.responder = responder
        self.reject_response_format = reject_response_format
        self.model = model
        self.served = list(served or [model])
        self.runtime_lora = runtime_lora
        self.pinned = False
        self.delay_s = 0.0
        self.token_delay_s = 0.0
        self.fail_status: int | None = None
        self.fail_times = 0
        self.requests: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)`` and ``THREADTUNE_LLM_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

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

    # --- HTTP -------------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return self._json(req, 400, {"error": {"message": "invalid JSON"}})
        path = req.path.split("?")[0].rstrip("/")
        with self._lock:
            self.calls.append((method, path, body))
        if path == "/health":
            return self._json(req, 200, {"status": "ok"})
        if path == "/v1/models":
            return self._json(req, 200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.served]})
        if path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter") and method == "POST":
            return self._lora(req, path, body)
        if path == "/v1/chat/completions" and method == "POST":
            return self._chat(req, body)
        return self._json(req, 404, {"error": {"message": f"no route {path}"}})

    def _lora(self, req: BaseHTTPRequestHandler, path: str, body: dict) -> None:
        if not self.runtime_lora:
            return self._json(req, 404, {"detail": "Not Found"})
        name = body.get("lora_name")
        if path.endswith("/load_lora_adapter"):
            if not name or not body.get("lora_path"):
                return self._json(req, 400, {"error": {"message": "Both 'lora_name' and 'lora_path' must be provided."}})
            if name in self.served:
                return self._json(req, 400, {"error": {"message": f"The lora adapter '{name}' has already been loaded."}})
            self.served.append(name)
            return self._text(req, 200, f"Success: LoRA adapter '{name}' added successfully.")
        if not name:
            return self._json(req, 400, {"error": {"message": "'lora_name' needs to be provided to unload a LoRA adapter."}})
        if name not in self.served[1:]:
            return self._json(req, 404, {"error": {"message": f"The lora adapter '{name}' cannot be found."}})
        self.served.remove(name)
        return self._text(req, 200, f"Success: LoRA adapter '{name}' removed successfully.")

    def _next(self, body: dict[str, Any]) -> str | Reply:
        if self.responder is not None:
            return self.responder(body)
        with self._lock:
            if not self.script:
                return EMPTY
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def _chat(self, req: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(body)
            failing = self.fail_status if self.fail_times > 0 else None
            if failing:
                self.fail_times -= 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if failing:
            return self._json(req, int(failing), {"error": {"message": "scripted failure"}})
        if self.reject_response_format and "response_format" in body:
            return self._json(req, 400, {"error": {"message": "response_format is not supported",
                                                   "type": "invalid_request_error"}})
        model = body.get("model", self.model)
        if self.pinned and model not in self.served:
            return self._json(req, 400, {"detail": f"Server is pinned to '{self.served[0]}'; requested '{model}'."})
        reply = self._next(body)
        if isinstance(reply, str):
            reply = Reply(reply)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.status != 200:
            return self._json(req, reply.status, {"error": {"message": reply.content or "error"}})
        text = reply.content
        if not body.get("stream"):
            n = len(text.split())
            return self._json(req, 200, {
                "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n}})
        self._stream(req, model, text)

    def _stream(self, req: BaseHTTPRequestHandler, model: str, text: str) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "text/event-stream")
        req.send_header("Connection", "close")
        req.end_headers()
        try:
            for i, word in enumerate(text.split(" ")):
                chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": {"content": word if i == 0 else " " + word},
                                      "finish_reason": None}]}
                req.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                req.wfile.flush()
                if self.token_delay_s:
                    time.sleep(self.token_delay_s)
            end = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            req.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            req.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        req.close_connection = True

    @staticmethod
    def _json(req: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    @staticmethod
    def _text(req: BaseHTTPRequestHandler, status: int, text: str) -> None:
        data = text.encode()
        req.send_response(status)
        req.send_header("Content-Type", "text/plain")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


def user_text(body: dict[str, Any]) -> str:
    """The user message of a recorded request (where the source text is)."""
    return next((m["content"] for m in body.get("messages", []) if m.get("role") == "user"), "")
