"""A scripted OpenAI-compatible server on loopback (port 0) that also stands in for vLLM's runtime
LoRA API. It records every request, answers chat completions (JSON or SSE streaming) with a scripted
reply, and can be told to be slow or to fail.

vLLM's documented runtime LoRA endpoints, checked as vLLM checks them:
- ``POST /v1/load_lora_adapter`` ``{"lora_name", "lora_path"}``: 200, or 400 when the name is loaded
  or a field is missing;
- ``POST /v1/unload_lora_adapter`` ``{"lora_name"}``: 200, or 404 when no such adapter is loaded.
Both answer 404 unless ``runtime_lora`` is on (VLLM_ALLOW_RUNTIME_LORA_UPDATING unset).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLLM:
    """``reply`` is a string or ``f(request_body) -> str``; ``served`` the model names served."""

    def __init__(self, reply: str | Callable[[dict], str] = "The answer is 42.", *,
                 served: list[str] | None = None, runtime_lora: bool = True) -> None:
        self.reply = reply
        self.served = list(served or ["threadtune/base"])
        self.pinned = False  # True: refuse unknown model names with 400, like transformers serve
        self.runtime_lora = runtime_lora
        self.delay_s = 0.0  # before the first byte
        self.token_delay_s = 0.0  # between streamed chunks
        self.fail_status: int | None = None
        self.fail_times = 0
        self.requests: list[tuple[str, str, dict]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def chat_requests(self) -> list[dict]:
        with self._lock:
            return [b for m, p, b in self.requests if p == "/v1/chat/completions"]

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
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

    # --- HTTP -------------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return self._json(req, 400, {"error": {"message": "invalid JSON"}})
        path = req.path.split("?")[0]
        with self._lock:
            self.requests.append((method, path, body))
        if path == "/health":
            return self._json(req, 200, {})
        if path == "/v1/models":
            return self._json(req, 200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "fake"} for m in self.served]})
        if path in ("/v1/load_lora_adapter", "/v1/unload_lora_adapter"):
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

    def _chat(self, req: BaseHTTPRequestHandler, body: dict) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            failing = self.fail_times > 0 and self.fail_status
            if failing:
                self.fail_times -= 1
        if failing:
            return self._json(req, int(self.fail_status), {"error": {"message": "scripted failure"}})
        model = body.get("model")
        if self.pinned and model not in self.served:
            return self._json(req, 400, {"detail": f"Server is pinned to '{self.served[0]}'; requested '{model}'."})
        text = self.reply(body) if callable(self.reply) else self.reply
        if not body.get("stream"):
            return self._json(req, 200, {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 10 + len(text.split())}})
        req.send_response(200)
        req.send_header("Content-Type", "text/event-stream")
        req.send_header("Connection", "close")
        req.end_headers()
        words = text.split(" ")
        try:
            for i, word in enumerate(words):
                delta = word if i == 0 else " " + word
                chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}]}
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
    def _json(req: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
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
