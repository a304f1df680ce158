"""The Web API methods of the fake Slack (``tests/fakes/slack.py``): each ``api_<method>`` answers
one method as Slack does, on the fake's state (called with its lock held, after the checks every
method shares: token, scope, required arguments and rate limit)."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes import slack_rules as rules

TEAM_ID = "T0FAKE"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
#: Slack's trigger ids work once, within 3 seconds.
TRIGGER_TTL_S = 3.0
#: "You can use a response_url to publish up to 5 times within 30 minutes" (Slack, handling user
#: interaction: message responses).
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL_S = 30 * 60.0


class WebApiMethods:
    """The ``api_*`` methods; :class:`tests.fakes.slack.FakeSlack` holds the state they use."""

    channels: dict[str, dict]
    users: dict[str, dict]
    history: dict[str, list[dict]]
    replies: dict[tuple[str, str], list[dict]]
    usergroups: dict[str, list[str]]
    posted: dict[tuple[str, str], dict]
    ephemerals: dict[tuple[str, str], dict]
    seen: set[tuple[str, str]]
    responses: dict[str, dict]
    views: dict[str, dict]
    uploads: dict[str, bytes]
    calls: list
    socket_url: str | None
    _triggers: dict[str, float]
    _used: set[str]
    _ts: int
    base_url: str

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

    def _message(self, channel: Any, ts: Any) -> dict | None:
        """The message ``ts`` of ``channel`` if Slack has it: seeded history or replies, posted by the
        app, or sent to the bot in an event (``fake.seen``); None when it does not exist."""
        ts = str(ts)
        if (channel, ts) in self.posted:
            return self.posted[(channel, ts)]
        for m in self.history.get(channel, []):
            if str(m.get("ts")) == ts:
                return m
        for (ch, _), thread in self.replies.items():
            for m in thread:
                if ch == channel and str(m.get("ts")) == ts:
                    return m
        if (channel, ts) in self.seen:
            return {"type": "message", "ts": ts}
        return None

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
        if thread_ts and self._message(channel, thread_ts) is None:
            # A reply to a message that does not exist (never posted, or deleted). Slack's
            # chat.postMessage page names this error; it has no thread_not_found.
            return {"ok": False, "error": "cannot_reply_to_message"}
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
        members = (self._info(channel) or {}).get("members")
        if members is not None and p.get("user") not in members:
            return {"ok": False, "error": "user_not_in_channel"}
        ts = self.next_ts()
        self.ephemerals[(channel, ts)] = {"user": p.get("user"), "text": p.get("text") or "",
                                          "blocks": _as_json(p.get("blocks")) or []}
        return {"ok": True, "message_ts": ts}

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
        if key in self.replies:
            return self._page(self.replies[key], p, "messages")
        single = self._message(*key)  # a message without replies is a thread of one
        if single is None:
            return {"ok": False, "error": "thread_not_found"}
        return self._page([single], p, "messages")

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


    # --- response_url ----------------------------------------------------------------------------
    def issue_response_url(self, name: str, channel: str | None = None, ts: str | None = None) -> dict:
        """Register a response_url (issued now); ``channel``/``ts`` name the message it came from."""
        return self.responses.setdefault(name, {"issued": time.monotonic(), "uses": 0,
                                                "channel": channel, "ts": ts})

    def post_response(self, name: str, p: dict) -> tuple[int, str]:
        """(HTTP status, body) of a post to a response_url, as Slack answers it: 404 ``expired_url``
        after 30 minutes, 404 ``used_url`` after 5 posts, 400 with the error for contents Slack
        refuses. ``delete_original`` deletes the message the action came from, ``replace_original``
        replaces it (without them a new message is published: ephemeral unless
        ``response_type: in_channel``). A URL issued without a message (a slash command's, or a
        test's own) has no original, and both then change nothing here."""
        url = self.issue_response_url(name)
        if time.monotonic() - url["issued"] > RESPONSE_URL_TTL_S:
            return 404, "expired_url"
        if url["uses"] >= RESPONSE_URL_USES:
            return 404, "used_url"
        url["uses"] += 1
        original = (url["channel"], url["ts"]) if url["ts"] else None
        if _truthy(p.get("delete_original")):
            if original and self.posted.pop(original, None) is None and self.ephemerals.pop(original, None) is None:
                return 404, "message_not_found"
            return 200, "ok"
        blocks = _as_json(p.get("blocks"))
        error = rules.message_error(p, blocks)
        if not error and not (p.get("text") or "").strip() and not blocks and not p.get("attachments"):
            error = "no_text"
        if error:
            return 400, error
        content = {"text": p.get("text") or "", "blocks": blocks or []}
        if _truthy(p.get("replace_original")) and original:
            target = self.posted.get(original) or self.ephemerals.get(original)
            if target is None:
                return 404, "message_not_found"
            target.update(content)
        return 200, "ok"



def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _as_json(value: Any) -> Any:
    """Form-encoded calls send JSON fields as strings; JSON calls send them as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
