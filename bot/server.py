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
from urllib.parse import parse_qs

import uvicorn
from slack_bolt import App
from slack_bolt.adapter.asgi.builtin import SlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from bot.validation import screen
from serving.process import free_port  # noqa: F401 (one copy, in serving/; tests and benches use it here)

#: Slack payloads are small; anything larger is refused before it is parsed.
MAX_BODY_BYTES = 1_000_000


class ThreadedSlackRequestHandler(SlackRequestHandler):
    """Bolt's ASGI adapter, dispatching on a worker thread, refusing oversized bodies, checking the
    signature before anything is parsed (401), and answering a body that cannot be parsed (not JSON
    or a form, nested too deep, a form field given twice) with 400 instead of a 500 and a traceback.

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
        # bolt parses the body and builds its context before it verifies the signature: check the
        # signature first, so that nobody unsigned gets a body parsed
        signed = self._signed(body, headers)
        if self.verifier is not None and not signed:
            return BoltResponse(status=401, body="invalid signature")
        if _repeated_form_field(body, headers):  # Slack never repeats one: refuse, do not guess
            return BoltResponse(status=400, body="a form field is repeated")
        try:
            bolt_request = BoltRequest(body=body, query=request.query_string, headers=headers)
        except (ValueError, TypeError, AttributeError, KeyError, RecursionError):
            return BoltResponse(status=400 if signed else 401, body="malformed payload")
        early = screen(bolt_request.body)
        if early is not None:
            return early
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


def _repeated_form_field(body: str, headers: dict) -> bool:
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    ctype = ctype[0] if isinstance(ctype, (list, tuple)) and ctype else ctype
    if "form" not in str(ctype):
        return False
    return any(len(v) > 1 for v in parse_qs(body, keep_blank_values=True).values())


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
def socket_mode(app: App, app_token: str) -> Iterator[object]:
    """Connect ``app`` in Socket Mode on background threads; yields the ``SocketModeHandler``.
    For tests and benches (``serve_socket_mode`` runs it in the foreground)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(app, app_token)
    handler.connect()
    try:
        yield handler
    finally:
        handler.close()


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
