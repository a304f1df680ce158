"""Send Events API, slash-command and interactivity requests to the bot over real HTTP, signed with a
real ``SignatureVerifier`` signature, as Slack does.

With ``fake`` (the fake Web API) the sender is as strict as Slack: trigger ids come from the fake
(they open one view, within 3 s), and slash-command text arrives as the manifest's ``should_escape``
makes it. A test writes the text as a person sees it, with references in either form (``#support``
or ``<#C1|support>``, ``@ana`` or ``<@U1|ana>``); with ``should_escape: true`` Slack sends the
escaped forms (and ``@channel`` as ``<!channel>``), with ``false`` channels and users by name and
everything else as typed (a literal ``<!channel>`` too).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack import TEAM_ID, FakeSlack
from tests.fakes.slack_rules import should_escape as manifest_escapes

_event_ids = itertools.count(1)


@dataclass
class SlackSender:
    """Signs and posts requests to the bot's ``/slack/events`` URL."""

    url: str
    signing_secret: str
    team_id: str = TEAM_ID
    timeout: float = 10.0
    fake: FakeSlack | None = None
    #: None: as the manifest says; True/False: as if the manifest said so.
    escape: bool | None = None

    def trigger(self, trigger_id: str | None = None) -> str:
        """``trigger_id`` if given, else a fresh one from the fake (or a fixed one without it)."""
        if trigger_id:
            return trigger_id
        return self.fake.trigger_id() if self.fake else "13345224609.738474920.8088930838d88f008e0"

    def slash_text(self, command: str, text: str) -> str:
        """``text`` as Slack sends it for ``command``."""
        escape = manifest_escapes(command) if self.escape is None else self.escape
        return escape_refs(text, self.fake) if escape else plain_refs(text)

    def post(self, body: str, content_type: str, *, headers: dict[str, str] | None = None,
             timestamp: int | None = None, sign: bool = True) -> httpx.Response:
        """POST ``body``; signed with the current time unless ``timestamp`` or ``sign`` say otherwise."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        h = {"Content-Type": content_type}
        if sign:
            h["X-Slack-Request-Timestamp"] = ts
            h["X-Slack-Signature"] = SignatureVerifier(self.signing_secret).generate_signature(
                timestamp=ts, body=body
            )
        h.update(headers or {})
        return httpx.post(self.url, content=body.encode(), headers=h, timeout=self.timeout)

    def event(self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None,
              team_id: str | None = None, **kw: Any) -> httpx.Response:
        """An Events API ``event_callback``; a retry repeats the event_id with X-Slack-Retry-Num."""
        team = team_id or self.team_id
        body = {
            "token": "legacy-token",
            "team_id": team,
            "api_app_id": "A0FAKE",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_event_ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": "UBOT", "is_bot": True}],
        }
        if self.fake:
            self.fake.saw(event)
        headers = kw.pop("headers", {}) or {}
        if retry_num is not None:
            headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
        return self.post(json.dumps(body), "application/json", headers=headers, **kw)

    def message(self, channel: str, user: str, text: str, ts: str, *, thread_ts: str | None = None,
                **kw: Any) -> httpx.Response:
        """A plain ``message`` event in ``channel``."""
        event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
                 "channel_type": "channel", "event_ts": ts}
        if thread_ts:
            event["thread_ts"] = thread_ts
        event.update(kw.pop("extra", {}))
        return self.event(event, **kw)

    def command(self, command: str, text: str = "", *, user_id: str = "U0ADMIN", channel_id: str = "C0GENERAL",
                response_url: str = "http://127.0.0.1:9/response", team_id: str | None = None,
                trigger_id: str | None = None, **kw: Any) -> httpx.Response:
        """A slash command, form-encoded as Slack sends it (text escaped as the manifest says)."""
        form = {
            "token": "legacy-token", "team_id": team_id or self.team_id, "team_domain": "fake",
            "channel_id": channel_id, "channel_name": "general", "user_id": user_id,
            "user_name": user_id.lower(), "command": command, "text": self.slash_text(command, text),
            "api_app_id": "A0FAKE", "response_url": response_url, "trigger_id": self.trigger(trigger_id),
        }
        return self.post(urlencode(form), "application/x-www-form-urlencoded", **kw)

    def interactive(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        """A ``block_actions``, ``view_submission``, ``shortcut`` or ``message_action`` payload."""
        payload.setdefault("team", {"id": self.team_id, "domain": "fake"})
        if payload.get("type") in ("block_actions", "shortcut", "message_action", "view_submission"):
            payload["trigger_id"] = self.trigger(payload.get("trigger_id"))
        payload.setdefault("api_app_id", "A0FAKE")
        payload.setdefault("token", "legacy-token")
        return self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded", **kw)

    def block_action(self, action_id: str, value: str, *, user_id: str, channel: str = "C0REVIEW",
                     message_ts: str = "1700000001.000100", trigger_id: str | None = None,
                     response_url: str = "http://127.0.0.1:9/response", **kw: Any) -> httpx.Response:
        """A button click (``block_actions``)."""
        payload = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_id.lower(), "team_id": self.team_id},
            "channel": {"id": channel, "name": "review"},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "message": {"ts": message_ts, "text": "", "type": "message"},
            "trigger_id": trigger_id,
            "response_url": response_url,
            "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button",
                         "action_ts": str(time.time())}],
        }
        if self.fake and response_url.startswith(self.fake.base_url + "/response/"):
            self.fake.clicked(response_url.rsplit("/", 1)[-1], channel, message_ts)
        return self.interactive(payload, **kw)

    def view_submission(self, callback_id: str, values: dict[str, dict[str, Any]], *, user_id: str,
                        private_metadata: str = "", **kw: Any) -> httpx.Response:
        """A modal submit; ``values`` is ``{block_id: {action_id: {type, value}}}`` as Slack sends it."""
        payload = {
            "type": "view_submission",
            "user": {"id": user_id, "username": user_id.lower(), "team_id": self.team_id},
            "view": {"id": "V00001", "type": "modal", "callback_id": callback_id,
                     "private_metadata": private_metadata, "state": {"values": values},
                     "hash": "h"},
        }
        return self.interactive(payload, **kw)


_ESCAPED = re.compile(r"<#([A-Z0-9]+)\|([^>]*)>|<@([A-Z0-9]+)(?:\|([^>]*))?>|<!(channel|here|everyone)>")
_PLAIN = re.compile(r"(?<![\w<])([#@])([\w.-]+)")


def plain_refs(text: str) -> str:
    """Channels and users picked from Slack's lists, as ``should_escape: false`` sends them (by name).
    ``<!channel>`` and the like stay: with escaping off, what a person typed arrives as typed."""
    def plain(m: re.Match) -> str:
        if m.group(1):
            return "#" + m.group(2)
        if m.group(3):
            return "@" + (m.group(4) or m.group(3))
        return m.group(0)

    return _ESCAPED.sub(plain, text)


def escape_refs(text: str, fake: FakeSlack | None) -> str:
    """References escaped as Slack does (``should_escape: true``): known channel and user names
    become ``<#C…|name>`` and ``<@U…|name>``, @channel/@here/@everyone ``<!…>``."""
    channels = {c["name"]: cid for cid, c in (fake.channels if fake else {}).items()}
    users = {u["name"]: uid for uid, u in (fake.users if fake else {}).items()}

    def escaped(m: re.Match) -> str:
        sigil, name = m.group(1), m.group(2)
        if sigil == "#" and name in channels:
            return f"<#{channels[name]}|{name}>"
        if sigil == "@" and name in ("channel", "here", "everyone"):
            return f"<!{name}>"
        if sigil == "@" and name in users:
            return f"<@{users[name]}|{name}>"
        return m.group(0)

    return _PLAIN.sub(escaped, text)
