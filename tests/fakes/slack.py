"""A fake Slack Web API on 127.0.0.1 (port 0), in the style of bolt-python's own test server,
and as strict as Slack (the rules are in ``tests/fakes/slack_rules.py``, the methods in
``tests/fakes/slack_methods.py``).

A real ``slack_sdk.WebClient`` (``base_url=fake.api_url``) talks to it over real HTTP. It records
every call, serves canned workspace data with cursor pagination, and refuses what Slack refuses:
missing arguments (``invalid_arguments``), Block Kit that ``slack_sdk.models`` or Slack's limits
reject (``invalid_blocks``, ``msg_blocks_too_long``), channels the bot has not joined
(``not_in_channel``), unknown tokens (``invalid_auth``), scopes the manifest does not ask for
(``missing_scope``), calls beyond a method's rate-limit tier (429 with ``Retry-After``) and trigger ids
that are unknown, used or older than 3 s, ephemeral messages to a user who is not a member of the
channel (``user_not_in_channel``, for channels seeded with ``members``), replies to threads that
do not exist (``cannot_reply_to_message``; ``thread_not_found`` from ``conversations.replies``).
It answers 429 or an API error when a test asks it to. Response URLs (``fake.response_url(...)``)
land here too, with Slack's limits (5 posts within 30 minutes) and ``replace_original`` /
``delete_original`` acting on the message a button was clicked in; so do file uploads.

Tests seed it through plain attributes: ``channels``, ``users``, ``history[channel]`` (top-level
messages, any order), ``replies[(channel, thread_ts)]`` (parent first), ``usergroups[id]``; a channel
that only has ``history`` or ``replies`` counts as a public channel the bot is in. ``tokens`` maps
each accepted bot token to its scopes (the manifest's by default); ``rate_limits`` can be tightened
or emptied per test.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes import slack_rules as rules
from tests.fakes.slack_methods import TEAM_ID, WebApiMethods
from tests.fakes.wait import eventually

#: Bot tokens the fixtures use; each gets the manifest's scopes.
BOT_TOKENS = ("xoxb-test", "xoxb-t")
APP_TOKEN = "xapp-1-test"
_triggers = itertools.count(1)


@dataclass
class Call:
    """One recorded request."""

    method: str  # Web API method, or "response_url" / "upload"
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Failure:
    method: str
    status: int
    error: str | None
    retry_after: int
    times: int


class FakeSlack(WebApiMethods):
    """State and behaviour of the fake; ``start()`` binds a server on a free loopback port."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.channels: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.history: dict[str, list[dict]] = {}
        self.replies: dict[tuple[str, str], list[dict]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.posted: dict[tuple[str, str], dict] = {}  # (channel, ts) -> message posted by the app
        self.ephemerals: dict[tuple[str, str], dict] = {}  # (channel, message_ts) -> ephemeral message
        self.seen: set[tuple[str, str]] = set()  # (channel, ts) of messages events told the bot about
        self.responses: dict[str, dict] = {}  # response_url name -> {issued, uses, channel, ts}
        self.views: dict[str, dict] = {}
        self.uploads: dict[str, bytes] = {}
        self.page_size_cap = 1000
        scopes = rules.manifest_scopes()
        self.tokens: dict[str, frozenset[str]] = {t: scopes for t in BOT_TOKENS}
        self.app_tokens: set[str] = {APP_TOKEN}
        self.rate_limits: dict[str, tuple[int, float, str]] = dict(rules.RATE_LIMITS)
        self.refused: list[tuple[Call, str]] = []  # (call, error) of every refused call
        self._hits: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._triggers: dict[str, float] = {}  # trigger_id -> issued at (monotonic)
        self._used: set[str] = set()
        self.socket_url: str | None = None  # what apps.connections.open answers (a FakeSocketMode)
        self._failures: list[Failure] = []
        self._lock = threading.Lock()
        self._ts = 1_700_000_000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """Pass as ``WebClient(base_url=...)`` or ``THREADTUNE_SLACK_API_URL``."""
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "r", *, channel: str | None = None, ts: str | None = None) -> str:
        """A response_url, as Slack puts in a slash command (no ``ts``) or an action on the message
        ``channel``/``ts`` (which ``replace_original``/``delete_original`` then act on); posts to it
        are recorded, and refused as Slack refuses them (``tests/fakes/slack_methods.py``)."""
        with self._lock:
            self.issue_response_url(name, channel, ts)
        return f"{self.base_url}/response/{name}"

    # --- test controls ----------------------------------------------------------------------
    def fail(self, method: str, *, status: int = 200, error: str | None = "internal_error",
             retry_after: int = 1, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail: status 429 gives Retry-After."""
        with self._lock:
            self._failures.append(Failure(method, status, error, retry_after, times))

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and Retry-After."""
        self.fail(method, status=429, error="ratelimited", retry_after=retry_after, times=times)

    def calls_for(self, method: str) -> list[Call]:
        """Recorded calls of one method, in order."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def count(self, method: str) -> int:
        return len(self.calls_for(method))

    def wait_for(self, method: str, n: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until ``method`` was called at least ``n`` times (listeners run after the ack)."""
        try:
            return eventually(lambda: len(calls := self.calls_for(method)) >= n and calls, timeout)
        except AssertionError:
            raise AssertionError(f"{method} called {self.count(method)} times, wanted {n} "
                                 f"(calls: {[c.method for c in self.calls]})") from None

    def add_channel(self, channel_id: str, name: str, **extra: Any) -> None:
        """A channel; the bot is a member unless ``is_member=False``; ``G…`` ids are private."""
        private = channel_id.startswith("G") or bool(extra.get("is_private"))
        self.channels[channel_id] = {"id": channel_id, "name": name, "is_channel": not private,
                                     "is_group": private, "is_private": private,
                                     "is_im": channel_id.startswith("D"), "is_member": True, **extra}

    def add_token(self, token: str) -> None:
        """Accept ``token`` as a bot token with the manifest's scopes (benches name their own)."""
        self.tokens[token] = rules.manifest_scopes()

    def trigger_id(self) -> str:
        """A fresh trigger id, as Slack puts in a slash command, shortcut or button click: it opens
        one view, within 3 s."""
        tid = f"{next(_triggers)}.{int(time.time())}.fake{len(self._triggers):04d}"
        with self._lock:
            self._triggers[tid] = time.monotonic()
        return tid

    def saw(self, event: dict[str, Any]) -> None:
        """An event sent to the bot: a message in it exists in Slack (a reply may go into its thread)
        until a ``message_deleted`` event removes it."""
        channel, ts = event.get("channel"), event.get("ts")
        if event.get("type") not in ("message", "app_mention") or not isinstance(channel, str):
            return
        with self._lock:
            if event.get("subtype") == "message_deleted":
                self.seen.discard((channel, str(event.get("deleted_ts"))))
            elif ts and event.get("subtype") != "message_changed":
                self.seen.add((channel, str(ts)))

    def clicked(self, name: str, channel: str, message_ts: str) -> None:
        """A button was clicked in the message ``channel``/``message_ts``: its response_url ``name``
        acts on that message, when the fake has it (posted by the app, or ephemeral)."""
        with self._lock:
            url = self.issue_response_url(name)
            if (channel, message_ts) in self.posted or (channel, message_ts) in self.ephemerals:
                url.update(channel=channel, ts=message_ts)

    def refusals(self, method: str | None = None) -> list[str]:
        """Errors of refused calls (of ``method``), in order."""
        with self._lock:
            return [e for c, e in self.refused if method is None or c.method == method]

    def add_user(self, user_id: str, name: str, real_name: str = "", **extra: Any) -> None:
        self.users[user_id] = {"id": user_id, "name": name, "real_name": real_name or name,
                               "profile": {"display_name": name, "real_name": real_name or name},
                               "is_bot": False, "deleted": False, **extra}

    # --- HTTP -------------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlparse(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        token = (req.headers.get("Authorization") or "").removeprefix("Bearer ").strip() or None
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(url.query).items()}
        ctype = req.headers.get("Content-Type") or ""
        if url.path.startswith("/upload/"):
            self.uploads[url.path.rsplit("/", 1)[-1]] = raw
            self._record(Call("upload", {"path": url.path, "size": len(raw)}, token))
            return self._send(req, 200, {"ok": True}, raw_text="OK - 200")
        if raw:
            if "json" in ctype:
                params.update(json.loads(raw))
            elif "form" in ctype:
                params.update({k: v[-1] for k, v in parse_qs(raw.decode()).items()})
                if "token" in params and not token:
                    token = params["token"]
        if url.path.startswith("/response/"):
            call = Call("response_url", {"path": url.path, **params}, token)
            self._record(call)
            with self._lock:
                status, answer = self.post_response(url.path.rsplit("/", 1)[-1], params)
                if status != 200:
                    self.refused.append((call, answer))
            return self._send(req, status, {}, raw_text=answer)
        if not url.path.startswith("/api/"):
            return self._send(req, 404, {"ok": False, "error": "unknown_path"})
        method = url.path[len("/api/"):]
        call = Call(method, params, token)
        self._record(call)
        failure = self._take_failure(method)
        if failure:
            headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
            return self._send(req, failure.status, {"ok": False, "error": failure.error}, headers)
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        with self._lock:
            error, retry_after = self._refusal(method, params, token, handler is None)
            if error:
                self.refused.append((call, error))
                if retry_after:
                    return self._send(req, 429, {"ok": False, "error": "ratelimited"},
                                      {"Retry-After": str(retry_after)})
                return self._send(req, 200, {"ok": False, "error": error})
            body = handler(params)
            if not body.get("ok"):
                self.refused.append((call, body.get("error")))
        self._send(req, 200, body)

    def _refusal(self, method: str, params: dict, token: str | None,
                 unknown: bool) -> tuple[str | None, int]:
        """(error, retry_after) of a call Slack would refuse before doing anything; (None, 0) if none."""
        if not token:
            return "not_authed", 0
        if token in self.app_tokens:
            return (None, 0) if method == "apps.connections.open" else ("not_allowed_token_type", 0)
        if method == "apps.connections.open":
            return "not_allowed_token_type", 0
        if token not in self.tokens:
            return "invalid_auth", 0
        channel = params.get("channel")
        kind = rules.conversation_kind(channel, self._info(channel)) if isinstance(channel, str) else "channels"
        scope = rules.scope_missing(method, self.tokens[token], kind)
        if scope:
            return "missing_scope", 0
        if unknown:
            return "unknown_method", 0
        if rules.missing_argument(method, params):
            return "invalid_arguments", 0
        limit = self.rate_limits.get(method)
        if limit:
            count, window, per = limit
            key = (method, str(channel) if per == "channel" else TEAM_ID)
            hits, now = self._hits[key], time.monotonic()
            while hits and now - hits[0] >= window:
                hits.popleft()
            if len(hits) >= count:
                return "ratelimited", max(1, math.ceil(window - (now - hits[0])))
            hits.append(now)
        return None, 0

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _take_failure(self, method: str) -> Failure | None:
        with self._lock:
            for f in self._failures:
                if f.method == method and f.times > 0:
                    f.times -= 1
                    return f
        return None

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: dict,
              headers: dict[str, str] | None = None, raw_text: str | None = None) -> None:
        data = (raw_text if raw_text is not None else json.dumps(body)).encode()
        req.send_response(status)
        req.send_header("Content-Type", "text/plain" if raw_text is not None else "application/json")
        req.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(data)
