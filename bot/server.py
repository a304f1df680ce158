"""HTTP mode: the bolt App behind uvicorn (a production ASGI server), and Socket Mode.

Events, commands and interactivity all arrive at ``POST /slack/events``. Bolt's builtin ASGI handler
calls the synchronous App on the event loop; we run each dispatch on a worker thread instead, so that
one slow listener never delays the 3-second ack of another request.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from slack_bolt import App
from slack_bolt.adapter.asgi.builtin import SlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from serving.process import free_port  # noqa: F401 (one copy, in serving/; tests and benches use it here)

#: Slack payloads are small; anything larger is refused before it is parsed.
MAX_BODY_BYTES = 1_000_000


class ThreadedSlackRequestHandler(SlackRequestHandler):
    """Bolt's ASGI adapter, dispatching on a worker thread, refusing oversized bodies, and answering
    a body that is not JSON or a form with 400 (401 when it is not signed either) instead of a 500.

    ``signing_secret`` is the one the App verifies with; without it a malformed body gets 401.
    """

    def __init__(self, app: App, path: str = "/slack/events", *, signing_secret: str | None = None) -> None:
        super().__init__(app, path=path)
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        body = await request.get_raw_body()
        if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
            return BoltResponse(status=413, body="payload too large")
        headers = request.get_headers()
        try:
            bolt_request = BoltRequest(body=body, query=request.query_string, headers=headers)
        except (ValueError, TypeError, AttributeError, KeyError):
            # bolt parses the body and builds its context before it verifies the signature: a body
            # that is not JSON, or has fields of the wrong type, would otherwise be a 500
            return BoltResponse(status=401 if not self._signed(body, headers) else 400,
                                body="malformed payload")
        return await asyncio.to_thread(self.app.dispatch, bolt_request)

    def _signed(self, body: str, headers: dict) -> bool:
        if self.verifier is None:
            return False
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp, signature = lower.get("x-slack-request-timestamp"), lower.get("x-slack-signature")
        if not (timestamp and signature):
            return False
        try:
            return self.verifier.is_valid(body, timestamp, signature)
        except ValueError:  # a timestamp that is not a number
            return False


def asgi_app(app: App, path: str = "/slack/events", *,
             signing_secret: str | None = None) -> ThreadedSlackRequestHandler:
    """The ASGI application serving ``app`` at ``path`` (``signing_secret``: the App's)."""
    return ThreadedSlackRequestHandler(app, path=path, signing_secret=signing_secret)


def serve_http(app: App, signing_secret: str, host: str = "0.0.0.0", port: int = 3000) -> None:
    """Run the bot in HTTP mode until interrupted."""
    uvicorn.run(asgi_app(app, signing_secret=signing_secret), host=host, port=port, log_level="warning", access_log=False)


def serve_socket_mode(app: App, app_token: str) -> None:
    """Run the bot in Socket Mode (no public URL needed) until interrupted."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    SocketModeHandler(app, app_token).start()


@contextmanager
def running(app: App, host: str = "127.0.0.1", port: int | None = None, *,
            signing_secret: str | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a background thread; yields the events URL. For tests and benches."""
    port = port or free_port(host)
    config = uvicorn.Config(asgi_app(app, signing_secret=signing_secret), host=host, port=port, log_level="warning",
                            access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the bot's HTTP server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}/slack/events"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
