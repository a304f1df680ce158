"""What Slack refuses, as pure checks for the fake Web API (``tests/fakes/slack.py``).

Sources: Slack's method pages (required arguments, scopes, rate-limit tiers, error names),
``slack_sdk.models`` (Block Kit validators) and the limits those models do not check: a text object
holds 1 to 3,000 characters, a message at most 50 blocks and about 12,000 characters of block text
(``msg_blocks_too_long``), a modal at most 100 blocks, an ``initial_value`` no longer than its input's
``max_length``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MANIFEST = Path(__file__).resolve().parents[2] / "slack-app-manifest.yaml"

MAX_TEXT_OBJECT = 3000
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_BLOCK_TEXT = 12_000
MAX_MESSAGE_TEXT = 40_000
MAX_INPUT = 3000

#: method → (required arguments; a tuple inside means "one of these").
REQUIRED: dict[str, tuple] = {
    "chat.postMessage": ("channel", ("text", "blocks", "attachments")),
    "chat.update": ("channel", "ts"),
    "chat.postEphemeral": ("channel", "user", ("text", "blocks", "attachments")),
    "chat.delete": ("channel", "ts"),
    "chat.getPermalink": ("channel", "message_ts"),
    "conversations.history": ("channel",),
    "conversations.replies": ("channel", "ts"),
    "conversations.info": ("channel",),
    "conversations.join": ("channel",),
    "users.info": ("user",),
    "usergroups.users.list": ("usergroup",),
    "views.open": ("trigger_id", "view"),
    "views.push": ("trigger_id", "view"),
    "views.update": ("view", ("view_id", "external_id")),
    "reactions.add": ("channel", "name", "timestamp"),
    "files.getUploadURLExternal": ("filename", "length"),
    "files.completeUploadExternal": ("files",),
}

#: method → scopes, one of which the token needs ("{kind}" is the conversation's kind:
#: channels, groups, im or mpim). Methods absent here need no scope.
SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.delete": ("chat:write",),
    "conversations.history": ("{kind}:history",),
    "conversations.replies": ("{kind}:history",),
    "conversations.info": ("{kind}:read",),
    "conversations.list": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "conversations.join": ("channels:join",),
    "conversations.open": ("im:write", "mpim:write"),
    "users.info": ("users:read",),
    "users.list": ("users:read",),
    "usergroups.users.list": ("usergroups:read",),
    "reactions.add": ("reactions:write",),
    "reactions.get": ("reactions:read",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}

#: method → (calls, per seconds, counted per "team" or per "channel"). Tier 2 is 20 a minute,
#: Tier 3 50, Tier 4 100; chat.postMessage allows about one a second per channel, in short bursts.
RATE_LIMITS: dict[str, tuple[int, float, str]] = {
    "chat.postMessage": (5, 5.0, "channel"),
    "chat.update": (50, 60.0, "team"),
    "chat.postEphemeral": (100, 60.0, "team"),
    "chat.delete": (50, 60.0, "team"),
    "conversations.history": (50, 60.0, "team"),
    "conversations.replies": (50, 60.0, "team"),
    "conversations.info": (50, 60.0, "team"),
    "conversations.list": (20, 60.0, "team"),
    "conversations.join": (50, 60.0, "team"),
    "users.info": (100, 60.0, "team"),
    "users.list": (20, 60.0, "team"),
    "usergroups.users.list": (20, 60.0, "team"),
    "views.open": (100, 60.0, "team"),
    "views.update": (100, 60.0, "team"),
    "views.push": (100, 60.0, "team"),
    "files.getUploadURLExternal": (20, 60.0, "team"),
    "files.completeUploadExternal": (20, 60.0, "team"),
}


def manifest() -> dict[str, Any]:
    """The app manifest the fake enforces (scopes, slash commands' ``should_escape``)."""
    return yaml.safe_load(MANIFEST.read_text())


def manifest_scopes() -> frozenset[str]:
    """The bot scopes the manifest asks for."""
    return frozenset(manifest()["oauth_config"]["scopes"]["bot"])


def should_escape(command: str) -> bool:
    """Whether Slack escapes channels, users and links in ``command``'s text (the manifest says)."""
    for c in manifest()["features"].get("slash_commands") or []:
        if c["command"] == command:
            return bool(c.get("should_escape", False))
    raise KeyError(f"{command} is not in the manifest")


def missing_argument(method: str, params: dict[str, Any]) -> str | None:
    """The first required argument ``params`` lacks, or None."""
    for need in REQUIRED.get(method, ()):
        names = need if isinstance(need, tuple) else (need,)
        if not any(params.get(n) not in (None, "") for n in names):
            return "/".join(names)
    return None


def conversation_kind(channel: str, info: dict[str, Any] | None) -> str:
    """channels, groups, im or mpim, as the scopes name them."""
    if channel.startswith("D") or (info or {}).get("is_im"):
        return "im"
    if (info or {}).get("is_mpim"):
        return "mpim"
    if channel.startswith("G") or (info or {}).get("is_private"):
        return "groups"
    return "channels"


def scope_missing(method: str, scopes: frozenset[str], kind: str = "channels") -> str | None:
    """The scope a call needs and ``scopes`` lacks, or None."""
    needed = tuple(s.format(kind=kind) for s in SCOPES.get(method, ()))
    if needed and not any(s in scopes for s in needed):
        return ",".join(needed)
    return None


# --- Block Kit ---------------------------------------------------------------------------------

def _texts(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every text object (``{"type": "mrkdwn"|"plain_text", "text": ...}``) under ``node``."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
            found.append((path, node))
        for key, value in node.items():
            found.extend(_texts(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_texts(value, f"{path}[{i}]"))
    return found


def _inputs(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "plain_text_input":
            found.append(node)
        for value in node.values():
            found.extend(_inputs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_inputs(value))
    return found


def block_problems(blocks: Any, *, modal: bool = False) -> list[str]:
    """Why Slack would refuse ``blocks`` with ``invalid_blocks``; empty when it would not."""
    if not isinstance(blocks, list):
        return ["blocks is not an array"]
    limit = MAX_MODAL_BLOCKS if modal else MAX_MESSAGE_BLOCKS
    problems = [f"{len(blocks)} blocks, more than {limit}"] if len(blocks) > limit else []
    for i, raw in enumerate(blocks):
        if not isinstance(raw, dict):
            problems.append(f"blocks[{i}] is not an object")
            continue
        try:
            block = Block.parse(raw)
            if block is None:
                problems.append(f"blocks[{i}] has an unknown type {raw.get('type')!r}")
                continue
            block.to_dict()  # validates the block and, through to_dict, every element in it
        except (SlackObjectFormationError, TypeError, AttributeError, KeyError, ValueError) as err:
            problems.append(f"blocks[{i}]: {err}")
    problems.extend(_text_problems(blocks))
    return problems


def _text_problems(node: Any) -> list[str]:
    problems = []
    for path, obj in _texts(node):
        text = obj.get("text")
        if not isinstance(text, str):
            problems.append(f"{path}.text is not a string")
        elif not text.strip():
            problems.append(f"{path}.text must be more than 0 characters")
        elif len(text) > MAX_TEXT_OBJECT:
            problems.append(f"{path}.text is {len(text)} characters, more than {MAX_TEXT_OBJECT}")
    for element in _inputs(node):
        max_length = element.get("max_length")
        initial = element.get("initial_value")
        if isinstance(max_length, int) and max_length > MAX_INPUT:
            problems.append(f"plain_text_input max_length {max_length} is more than {MAX_INPUT}")
        if isinstance(initial, str) and len(initial) > (max_length if isinstance(max_length, int)
                                                        else MAX_INPUT):
            problems.append(f"initial_value is {len(initial)} characters, more than max_length")
    return problems


def block_text_length(blocks: list[Any]) -> int:
    """Characters of text in ``blocks`` (what Slack counts toward ``msg_blocks_too_long``)."""
    return sum(len(obj["text"]) for _, obj in _texts(blocks) if isinstance(obj.get("text"), str))


def message_error(params: dict[str, Any], blocks: Any) -> str | None:
    """The error chat.postMessage/chat.update/chat.postEphemeral answer for these contents, or None."""
    text = params.get("text")
    if text is not None and not isinstance(text, str):
        return "invalid_arguments"
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        return "msg_too_long"
    if blocks is None:
        return None
    if block_problems(blocks):
        return "invalid_blocks"
    if block_text_length(blocks) > MAX_BLOCK_TEXT:
        return "msg_blocks_too_long"
    return None


def view_problems(view: Any) -> list[str]:
    """Why Slack would refuse a view with ``invalid_arguments``; empty when it would not."""
    if not isinstance(view, dict):
        return ["view is not an object"]
    if not view.get("type"):
        return ["view without a type"]
    try:
        View(**view).to_dict()
    except (SlackObjectFormationError, TypeError, AttributeError, KeyError, ValueError) as err:
        return [f"view: {err}"]
    problems = block_problems(view.get("blocks") or [], modal=True)
    for key in ("title", "submit", "close"):
        if key in view:
            problems.extend(_text_problems({key: view[key]}))
    return problems
