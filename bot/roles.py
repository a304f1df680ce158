"""Roles: admin, reviewer, member, from settings or a Slack user group."""

from __future__ import annotations

import time
from typing import Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from threadtune.settings import Settings

Role = Literal["admin", "reviewer", "member"]
_RANK = {"member": 0, "reviewer": 1, "admin": 2}
_GROUP_TTL_S = 300.0
_group_cache: dict[str, tuple[float, frozenset[str]]] = {}


def group_members(client: WebClient, group_id: str) -> frozenset[str]:
    """Members of a Slack user group (usergroups.users.list), cached for five minutes."""
    hit = _group_cache.get(group_id)
    if hit and time.monotonic() - hit[0] < _GROUP_TTL_S:
        return hit[1]
    try:
        users = frozenset(client.usergroups_users_list(usergroup=group_id).get("users", []))
    except SlackApiError:
        users = frozenset()
    _group_cache[group_id] = (time.monotonic(), users)
    return users


def role_of(settings: Settings, user_id: str, client: WebClient | None = None) -> Role:
    """The highest role of ``user_id``: admins from settings or the admin group, then reviewers."""
    if user_id in settings.admin_ids or (
        settings.admin_group and client and user_id in group_members(client, settings.admin_group)
    ):
        return "admin"
    if user_id in settings.reviewer_ids or (
        settings.reviewer_group
        and client
        and user_id in group_members(client, settings.reviewer_group)
    ):
        return "reviewer"
    return "member"


def has_role(settings: Settings, user_id: str, needed: Role, client: WebClient | None = None) -> bool:
    """Whether ``user_id`` holds ``needed`` or a higher role (admins may review)."""
    return _RANK[role_of(settings, user_id, client)] >= _RANK[needed]


def refusal(settings: Settings, needed: Role, action: str) -> str:
    """The ephemeral text for a refused action: what was refused and who can do it."""
    who = list(settings.admin_ids)
    if needed == "reviewer":
        who += [u for u in settings.reviewer_ids if u not in who]
    group = settings.admin_group if needed == "admin" else settings.reviewer_group
    names = ", ".join(f"<@{u}>" for u in who) or "nobody is configured yet"
    if group:
        names += f" and members of <!subteam^{group}>"
    env = "THREADTUNE_ADMIN_IDS" if needed == "admin" else "THREADTUNE_REVIEWER_IDS"
    return f":no_entry: Only {needed}s can {action}. Ask {names} (set in {env})."
