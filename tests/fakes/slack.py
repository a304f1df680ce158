"""A fake Slack Web API on 127.0.0.1 (port 0), in the style of bolt-python's own test server.

A real ``slack_sdk.WebClient`` (``base_url=fake.api_url``) talks to it over real HTTP. It records
every call, serves canned workspace data with cursor pagination, and answers 429 or an API error
when a test asks it to. Response URLs (``fake.response_url(...)``) and file uploads land here too.

Tests seed it through plain attributes: ``channels``, ``users``, ``history[channel]`` (top-level
messages, any order), ``replies[(channel, thread_ts)]`` (parent first), ``usergroups[id]``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.wait import eventually

TEAM_ID = "T0FAKE"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"


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
        self.channels[channel_id] = {"id": channel_id, "name": name, "is_channel": True,
                                     "is_member": True, **extra}

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
        self._record(Call(method, params, token))
        failure = self._take_failure(method)
        if failure:
            headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
            return self._send(req, failure.status, {"ok": False, "error": failure.error}, headers)
        if not token:
            return self._send(req, 200, {"ok": False, "error": "not_authed"})
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        if handler is None:
            return self._send(req, 200, {"ok": False, "error": "unknown_method"})
        with self._lock:
            body = handler(params)
        self._send(req, 200, body)

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

    # --- Web API methods ----------------------------------------------------------------------
    def api_auth_test(self, p: dict) -> dict:
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake Team", "user": "threadtune",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def api_chat_postMessage(self, p: dict) -> dict:  # noqa: N802
        channel = p.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self.next_ts()
        msg = {"type": "message", "ts": ts, "user": BOT_USER_ID, "bot_id": BOT_ID,
               "text": p.get("text", ""), "blocks": _as_json(p.get("blocks")),
               "thread_ts": p.get("thread_ts"), "channel": channel}
        self.posted[(channel, ts)] = msg
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def api_chat_update(self, p: dict) -> dict:
        key = (p.get("channel"), p.get("ts"))
        if key not in self.posted:
            return {"ok": False, "error": "message_not_found"}
        msg = self.posted[key]
        msg.update({"text": p.get("text", msg["text"]), "blocks": _as_json(p.get("blocks")) or msg["blocks"]})
        return {"ok": True, "channel": key[0], "ts": key[1], "text": msg["text"]}

    def api_chat_postEphemeral(self, p: dict) -> dict:  # noqa: N802
        return {"ok": True, "message_ts": self.next_ts()}

    def api_chat_getPermalink(self, p: dict) -> dict:  # noqa: N802
        channel, ts = p.get("channel"), str(p.get("message_ts", ""))
        return {"ok": True, "channel": channel,
                "permalink": f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"}

    def api_chat_delete(self, p: dict) -> dict:
        self.posted.pop((p.get("channel"), p.get("ts")), None)
        return {"ok": True}

    def api_conversations_history(self, p: dict) -> dict:
        channel = p.get("channel")
        if channel not in self.history and channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        items = sorted(self.history.get(channel, []), key=lambda m: float(m["ts"]), reverse=True)
        if p.get("oldest"):
            items = [m for m in items if float(m["ts"]) > float(p["oldest"])]
        if p.get("latest"):
            items = [m for m in items if float(m["ts"]) < float(p["latest"])]
        return self._page(items, p, "messages")

    def api_conversations_replies(self, p: dict) -> dict:
        key = (p.get("channel"), str(p.get("ts")))
        if key not in self.replies:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(self.replies[key], p, "messages")

    def api_conversations_info(self, p: dict) -> dict:
        ch = self.channels.get(p.get("channel"))
        return {"ok": True, "channel": ch} if ch else {"ok": False, "error": "channel_not_found"}

    def api_conversations_list(self, p: dict) -> dict:
        return self._page(list(self.channels.values()), p, "channels")

    def api_conversations_join(self, p: dict) -> dict:
        ch = self.channels.get(p.get("channel"))
        return {"ok": True, "channel": ch} if ch else {"ok": False, "error": "channel_not_found"}

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

    def api_views_open(self, p: dict) -> dict:
        if not p.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        view = dict(_as_json(p.get("view")) or {})
        view_id = f"V{len(self.views) + 1:05d}"
        view.update({"id": view_id, "hash": "h" + view_id})
        self.views[view_id] = view
        return {"ok": True, "view": view}

    def api_views_update(self, p: dict) -> dict:
        view_id = p.get("view_id")
        if view_id not in self.views:
            return {"ok": False, "error": "not_found"}
        view = dict(_as_json(p.get("view")) or {})
        view.update({"id": view_id, "hash": "h2" + view_id})
        self.views[view_id] = view
        return {"ok": True, "view": view}

    def api_views_push(self, p: dict) -> dict:
        return self.api_views_open({**p, "trigger_id": p.get("trigger_id") or "t"})

    def api_reactions_add(self, p: dict) -> dict:
        return {"ok": True}

    def api_files_getUploadURLExternal(self, p: dict) -> dict:  # noqa: N802
        file_id = f"F{len(self.uploads) + len(self.calls):06d}"
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def api_files_completeUploadExternal(self, p: dict) -> dict:  # noqa: N802
        files = _as_json(p.get("files")) or []
        return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}


def _as_json(value: Any) -> Any:
    """Form-encoded calls send JSON fields as strings; JSON calls send them as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
