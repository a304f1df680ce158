"""A fake Slack Web API on 127.0.0.1 (port 0), in the style of bolt-python's own test server,
and as strict as Slack (the rules are in ``tests/fakes/slack_rules.py``).

A real ``slack_sdk.WebClient`` (``base_url=fake.api_url``) talks to it over real HTTP. It records
every call, serves canned workspace data with cursor pagination, and refuses what Slack refuses:
missing arguments (``invalid_arguments``), Block Kit that ``slack_sdk.models`` or Slack's limits
reject (``invalid_blocks``, ``msg_blocks_too_long``), channels the bot has not joined
(``not_in_channel``), unknown tokens (``invalid_auth``), scopes the manifest does not ask for
(``missing_scope``), calls beyond a method's rate-limit tier (429 with ``Retry-After``) and trigger ids
that are unknown, used or older than 3 s. It answers 429 or an API error when a test asks it to.
Response URLs (``fake.response_url(...)``) and file uploads land here too.

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
from tests.fakes.wait import eventually

TEAM_ID = "T0FAKE"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
#: Bot tokens the fixtures use; each gets the manifest's scopes.
BOT_TOKENS = ("xoxb-test", "xoxb-t")
APP_TOKEN = "xapp-1-test"
#: Slack's trigger ids work once, within 3 seconds.
TRIGGER_TTL_S = 3.0
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


class FakeSlack:
    """State and behaviour of the fake; ``start()`` binds a server on a free loopback port."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.channels: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.history: dict[str, list[dict]] = {}
        self.replies: dict[tuple[str, str], list[dict]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.posted: dict[tuple[str, str], dict] = {}  # (channel, ts) -> message posted by the app
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

    def response_url(self, name: str = "r") -> str:
        """A response_url for slash commands and actions; posts to it are recorded."""
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

    def trigger_id(self) -> str:
        """A fresh trigger id, as Slack puts in a slash command, shortcut or button click: it opens
        one view, within 3 s."""
        tid = f"{next(_triggers)}.{int(time.time())}.fake{len(self._triggers):04d}"
        with self._lock:
            self._triggers[tid] = time.monotonic()
        return tid

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
            self._record(Call("response_url", {"path": url.path, **params}, token))
            return self._send(req, 200, {"ok": True}, raw_text="ok")
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

    # --- helpers ----------------------------------------------------------------------------
    def next_ts(self) -> str:
        self._ts += 1
        return f"{self._ts}.000100"

    @staticmethod
    def _page(items: list, params: dict, key: str) -> dict:
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        chunk = items[start:start + limit]
        nxt = start + limit
        more = nxt < len(items)
        return {"ok": True, key: chunk, "has_more": more,
                "response_metadata": {"next_cursor": str(nxt) if more else ""}}

    # --- conversations -----------------------------------------------------------------------
    def _info(self, channel: Any) -> dict | None:
        """What the fake knows of a conversation; None when Slack would say channel_not_found."""
        if not isinstance(channel, str):
            return None
        if channel in self.channels:
            return self.channels[channel]
        if channel in self.history or any(k[0] == channel for k in self.replies):
            return {"id": channel, "is_channel": True, "is_member": True}
        if channel.startswith("D"):
            return {"id": channel, "is_im": True, "is_member": True}
        return None

    def _writable(self, channel: Any) -> tuple[str | None, str | None]:
        """(conversation id to post into, error). A user id posts into the DM with that user."""
        if isinstance(channel, str) and channel[:1] in ("U", "W"):
            return "D" + channel[1:], None
        info = self._info(channel)
        if info is None:
            return None, "channel_not_found"
        if info.get("is_archived"):
            return None, "is_archived"
        if not info.get("is_member"):
            return None, "not_in_channel"
        return channel, None

    def _readable(self, channel: Any) -> str | None:
        """The error reading a conversation's messages gives, or None."""
        info = self._info(channel)
        if info is None:
            return "channel_not_found"
        return None if info.get("is_member") else "not_in_channel"

    # --- Web API methods ----------------------------------------------------------------------
    def api_auth_test(self, p: dict) -> dict:
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake Team", "user": "threadtune",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def api_apps_connections_open(self, p: dict) -> dict:
        if self.socket_url is None:
            return {"ok": False, "error": "socket_mode_not_enabled"}
        return {"ok": True, "url": self.socket_url}

    def api_chat_postMessage(self, p: dict) -> dict:  # noqa: N802
        channel, error = self._writable(p.get("channel"))
        blocks = _as_json(p.get("blocks"))
        error = error or rules.message_error(p, blocks)
        if error:
            return {"ok": False, "error": error}
        if not (p.get("text") or "").strip() and not blocks and not p.get("attachments"):
            return {"ok": False, "error": "no_text"}
        thread_ts = p.get("thread_ts")
        ts = self.next_ts()
        msg = {"type": "message", "ts": ts, "user": BOT_USER_ID, "bot_id": BOT_ID,
               "text": p.get("text", ""), "blocks": blocks or [],
               "thread_ts": thread_ts, "channel": channel}
        self.posted[(channel, ts)] = msg
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def api_chat_update(self, p: dict) -> dict:
        key = (p.get("channel"), p.get("ts"))
        if key not in self.posted:
            return {"ok": False, "error": "message_not_found" if self._info(key[0]) else "channel_not_found"}
        blocks = _as_json(p.get("blocks")) if "blocks" in p else None
        error = rules.message_error(p, blocks)
        if error:
            return {"ok": False, "error": error}
        msg = self.posted[key]
        if "text" in p:
            msg["text"] = p.get("text") or ""
        if blocks is not None:  # an empty array clears the blocks; no blocks keeps them
            msg["blocks"] = blocks
        if not (msg["text"] or "").strip() and not msg["blocks"]:
            return {"ok": False, "error": "no_text"}
        return {"ok": True, "channel": key[0], "ts": key[1], "text": msg["text"]}

    def api_chat_postEphemeral(self, p: dict) -> dict:  # noqa: N802
        channel, error = self._writable(p.get("channel"))
        error = error or rules.message_error(p, _as_json(p.get("blocks")))
        if error:
            return {"ok": False, "error": error}
        if p.get("user") not in self.users and not str(p.get("user", "")).startswith(("U", "W")):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "message_ts": self.next_ts()}

    def api_chat_getPermalink(self, p: dict) -> dict:  # noqa: N802
        channel, ts = p.get("channel"), str(p.get("message_ts", ""))
        if self._info(channel) is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": channel,
                "permalink": f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def api_chat_delete(self, p: dict) -> dict:
        if self.posted.pop((p.get("channel"), p.get("ts")), None) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True}

    def api_conversations_history(self, p: dict) -> dict:
        channel = p.get("channel")
        error = self._readable(channel)
        if error:
            return {"ok": False, "error": error}
        items = sorted(self.history.get(channel, []), key=lambda m: float(m["ts"]), reverse=True)
        if p.get("oldest"):
            items = [m for m in items if float(m["ts"]) > float(p["oldest"])]
        if p.get("latest"):
            items = [m for m in items if float(m["ts"]) < float(p["latest"])]
        return self._page(items, p, "messages")

    def api_conversations_replies(self, p: dict) -> dict:
        error = self._readable(p.get("channel"))
        if error:
            return {"ok": False, "error": error}
        key = (p.get("channel"), str(p.get("ts")))
        if key not in self.replies:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(self.replies[key], p, "messages")

    def api_conversations_info(self, p: dict) -> dict:
        ch = self.channels.get(p.get("channel")) or self._info(p.get("channel"))
        return {"ok": True, "channel": ch} if ch else {"ok": False, "error": "channel_not_found"}

    def api_conversations_list(self, p: dict) -> dict:
        types = set(str(p.get("types") or "public_channel").split(","))
        chans = [c for c in self.channels.values()
                 if ("private_channel" if c.get("is_private") else
                     "im" if c.get("is_im") else "public_channel") in types]
        return self._page(chans, p, "channels")

    def api_conversations_join(self, p: dict) -> dict:
        ch = self.channels.get(p.get("channel"))
        if not ch:
            return {"ok": False, "error": "channel_not_found"}
        if ch.get("is_private") or ch.get("is_im"):
            return {"ok": False, "error": "method_not_supported_for_channel_type"}
        if ch.get("is_archived"):
            return {"ok": False, "error": "is_archived"}
        ch["is_member"] = True
        return {"ok": True, "channel": ch}

    def api_users_info(self, p: dict) -> dict:
        user = self.users.get(p.get("user"))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def api_users_list(self, p: dict) -> dict:
        return self._page(list(self.users.values()), p, "members")

    def api_usergroups_users_list(self, p: dict) -> dict:
        group = p.get("usergroup")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": self.usergroups[group]}

    # --- views ---------------------------------------------------------------------------------
    def _take_trigger(self, trigger_id: str) -> str | None:
        """The error a trigger id gives, or None (and it is used up)."""
        issued = self._triggers.pop(trigger_id, None)
        if issued is None:
            return "invalid_trigger_id" if trigger_id not in self._used else "exchanged_trigger_id"
        self._used.add(trigger_id)
        if time.monotonic() - issued > TRIGGER_TTL_S:
            return "expired_trigger_id"
        return None

    def _store_view(self, view_id: str, p: dict) -> dict:
        view = dict(_as_json(p.get("view")) or {})
        view.update({"id": view_id, "hash": f"h{len(self.calls)}{view_id}", "state": {"values": {}}})
        self.views[view_id] = view
        return {"ok": True, "view": view}

    def api_views_open(self, p: dict) -> dict:
        if rules.view_problems(_as_json(p.get("view"))):
            return {"ok": False, "error": "invalid_arguments"}
        error = self._take_trigger(str(p.get("trigger_id")))
        if error:
            return {"ok": False, "error": error}
        return self._store_view(f"V{len(self.views) + 1:05d}", p)

    def api_views_update(self, p: dict) -> dict:
        view_id = p.get("view_id")
        if view_id not in self.views:
            return {"ok": False, "error": "not_found"}
        if rules.view_problems(_as_json(p.get("view"))):
            return {"ok": False, "error": "invalid_arguments"}
        return self._store_view(view_id, p)

    def api_views_push(self, p: dict) -> dict:
        return self.api_views_open(p)

    def api_reactions_add(self, p: dict) -> dict:
        return {"ok": True}

    def api_files_getUploadURLExternal(self, p: dict) -> dict:  # noqa: N802
        file_id = f"F{len(self.uploads) + len(self.calls):06d}"
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def api_files_completeUploadExternal(self, p: dict) -> dict:  # noqa: N802
        files = _as_json(p.get("files")) or []
        if p.get("channel_id"):
            _, error = self._writable(p.get("channel_id"))
            if error:
                return {"ok": False, "error": error}
        return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}


def _as_json(value: Any) -> Any:
    """Form-encoded calls send JSON fields as strings; JSON calls send them as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
