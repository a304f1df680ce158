"""Payload validation for every request, signed (HTTP) or not (Socket Mode).

Socket Mode needs no signature, so shape is all we can check: a payload that is not what Slack
sends is acknowledged (so that Slack does not redeliver it) and dropped before bolt sees it.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

#: Largest text field we accept in one payload (Slack caps messages at 40k characters; edits of
#: long pastes and exports can carry more, so leave room).
MAX_TEXT = 200_000
_ID_FIELDS = ("team_id", "api_app_id", "event_id")
_CHANNEL_OBJECT_NAMES = frozenset({"channel_created", "channel_rename", "group_rename"})
#: Request types with listeners (or bolt's own handling); any other is acknowledged and dropped.
HANDLED = frozenset({"event_callback", "url_verification", "ssl_check", "block_actions",
                     "view_submission", "view_closed", "shortcut", "message_action", "block_suggestion"})
_INTERACTIVE = ("block_actions", "view_submission", "view_closed", "shortcut", "message_action")


def problems(body: Any) -> list[str]:
    """What is wrong with a request body; empty when it has the shape Slack sends."""
    if not isinstance(body, dict):
        return ["body is not an object"]
    found: list[str] = []
    kind = body.get("type")
    if "command" in body:
        for key in ("command", "user_id", "team_id"):
            if not isinstance(body.get(key), str) or not body.get(key):
                found.append(f"slash command without {key}")
        if not isinstance(body.get("text", ""), str):
            found.append("slash command text is not a string")
        return found
    if kind is not None and not isinstance(kind, str):
        return ["type is not a string"]
    for key in _ID_FIELDS:
        if key in body and not isinstance(body[key], str):
            found.append(f"{key} is not a string")
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict):
            return found + ["event_callback without an event object"]
        if not isinstance(event.get("type"), str):
            found.append("event without a type")
        for key in ("channel", "user", "ts", "thread_ts", "subtype"):
            if (key == "channel" and isinstance(event.get(key), dict)
                    and str(event.get("type")) in _CHANNEL_OBJECT_NAMES):
                continue  # channel_rename and friends carry the channel object
            if key in event and event[key] is not None and not isinstance(event[key], str):
                found.append(f"event.{key} is not a string")
        text = event.get("text")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
            found.append("event.text is not a string of at most 200k characters")
        for key in ("message", "previous_message", "item"):
            if key in event and event[key] is not None and not isinstance(event[key], dict):
                found.append(f"event.{key} is not an object")
    elif kind in _INTERACTIVE:
        user = body.get("user")
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            found.append(f"{kind} without user.id")
        actions = body.get("actions")
        if kind == "block_actions" and not (isinstance(actions, list) and actions and all(
                isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions)):
            found.append("block_actions without actions that each have an action_id")
        view = body.get("view")
        if kind.startswith("view_") and not (isinstance(view, dict) and isinstance(view.get("type"), str)
                                             and isinstance(view.get("callback_id", ""), str)):
            found.append(f"{kind} without a view that has a type")
        for key in ("callback_id", "trigger_id"):
            if key in body and not isinstance(body[key], str):
                found.append(f"{key} is not a string")
    return found


def screen(body: Any) -> BoltResponse | None:
    """The reply to a request no listener may see: 200 for a malformed payload (acknowledged and
    dropped: Slack must not redeliver what it will never fix) and for a request type we do not
    handle (Slack counts other replies toward turning event delivery off); None for the rest.

    It runs before bolt's dispatch (``bot/server.py`` for HTTP, after the signature check;
    ``bot.app.ThreadtuneApp`` for Socket Mode), because bolt's own middleware and its argument
    injection assume Slack's shapes: ``event: [1]`` or a view without a type would be a 500."""
    found = problems(body)
    if found:
        log.warning("dropped a malformed payload: %s", "; ".join(found))
        return BoltResponse(status=200, body="")
    kind = body.get("type")
    if "command" not in body and kind not in HANDLED:
        # app_rate_limited: Slack is dropping our events for a minute
        level = logging.WARNING if kind == "app_rate_limited" else logging.INFO
        log.log(level, "acknowledged a %s request without handling it", kind)
        return BoltResponse(status=200, body="")
    return None
