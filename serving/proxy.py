"""A loopback reverse proxy with a switchable upstream: one stable URL while servers are swapped.

The merged live server (``serving/swap.py``) replaces its vLLM on every promotion: the new one
starts on a free port while the old one answers, the proxy switches to it once it is healthy, and
the old one is stopped only when every request it was given has finished. Clients (the bot,
``threadtune ask``) keep one URL, ``http://127.0.0.1:THREADTUNE_SERVING_PORT/v1``.

Each request is forwarded (method, path, body, headers) to the upstream current when it arrived,
and the reply is passed on as it arrives: streamed answers (server-sent events) stream
through, chunk by chunk. An unreachable upstream gets an OpenAI-style 502 ``{"error": {...}}``; an
upstream that dies mid-answer makes the proxy drop the connection, as the server itself would.

One live model stands behind the URL: given ``model``, a JSON request that names another model is
sent to the upstream with that name instead. During a swap the bot asks for the new version
before its server is up, and a request may name the old one after the switch; both are answered
by the server that is live, and the reply's ``model`` says which.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

#: Headers that describe one hop, not the message (RFC 9110 §7.6.1), and the framing we redo.
HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length", "host"}


class Proxy:
    """``start()`` serves on ``host:port`` (0: a free port) and forwards to :attr:`upstream`;
    :meth:`switch` changes it for new requests, :meth:`drain` waits for an old one's to finish."""

    def __init__(self, upstream: str, *, model: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 timeout_s: float = 600.0) -> None:
        self._upstream = _root(upstream)
        self._model = model
        self._lock = threading.Condition()
        self._in_flight: Counter[str] = Counter()
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=5.0), limits=httpx.Limits(
            max_connections=256, max_keepalive_connections=32))
        self._httpd = _Server((host, port), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The stable OpenAI base URL clients use (``http://host:port/v1``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def upstream(self) -> str:
        """Where new requests go (the root URL of the current server)."""
        with self._lock:
            return self._upstream

    def start(self) -> Proxy:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="serving-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the upstream connections."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._client.close()

    def switch(self, upstream: str, model: str | None = None) -> str:
        """Send new requests to ``upstream`` (a base URL), naming ``model``; returns the previous
        upstream. Requests already forwarded finish where they are."""
        with self._lock:
            old, self._upstream, self._model = self._upstream, _root(upstream), model
            return old

    def in_flight(self, upstream: str) -> int:
        """Requests forwarded to ``upstream`` that have not finished."""
        with self._lock:
            return self._in_flight[_root(upstream)]

    def drain(self, upstream: str, timeout_s: float) -> bool:
        """Wait until no request forwarded to ``upstream`` is still running (True), or the timeout."""
        key, deadline = _root(upstream), time.monotonic() + timeout_s
        with self._lock:
            while self._in_flight[key]:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    # --- one request ---------------------------------------------------------------------------
    def _acquire(self) -> tuple[str, str | None]:
        with self._lock:
            self._in_flight[self._upstream] += 1
            return self._upstream, self._model

    def _release(self, upstream: str) -> None:
        with self._lock:
            self._in_flight[upstream] -= 1
            self._lock.notify_all()

    def forward(self, req: BaseHTTPRequestHandler) -> None:
        """Forward ``req`` to the current upstream and pass the reply back as it arrives."""
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else None
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_HEADERS}
        upstream, model = self._acquire()
        try:
            if model and body and "json" in req.headers.get("Content-Type", ""):
                body = _renamed(body, model)
            try:
                upstream_req = self._client.build_request(req.command, upstream + req.path, headers=headers,
                                                          content=body)
                resp = self._client.send(upstream_req, stream=True)
            except httpx.HTTPError as err:
                _error(req, 502, f"the model server at {upstream} is not answering: {err}")
                return
            try:
                req.send_response(resp.status_code)
                for k, v in resp.headers.multi_items():
                    if k.lower() not in HOP_HEADERS:
                        req.send_header(k, v)
                if "content-length" in resp.headers:
                    data = resp.read()
                    req.send_header("Content-Length", str(len(data)))
                    req.end_headers()
                    req.wfile.write(data)
                    return
                req.send_header("Transfer-Encoding", "chunked")
                req.end_headers()
                for chunk in resp.iter_raw():
                    if chunk:
                        req.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        req.wfile.flush()
                req.wfile.write(b"0\r\n\r\n")
            except (httpx.HTTPError, OSError):
                req.close_connection = True  # the upstream died mid-reply: end it as it did
            finally:
                resp.close()
        finally:
            self._release(upstream)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of clients (the bench sends 32 at once) waits in the backlog

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that hung up (curation cuts a looping reply off): nothing to report
        super().handle_error(request, client_address)


def _root(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _renamed(body: bytes, model: str) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body  # the server answers a malformed body itself
    if not isinstance(data, dict) or data.get("model", model) == model:
        return body
    return json.dumps({**data, "model": model}).encode()


def _error(req: BaseHTTPRequestHandler, status: int, message: str) -> None:
    data = json.dumps({"error": {"message": message, "type": "server_error", "code": status}}).encode()
    req.send_response(status)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    req.wfile.write(data)


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's names)
            proxy.forward(self)

        do_POST = do_DELETE = do_PUT = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:  # the servers behind it log requests
            pass

    return Handler
