"""Roles: admin, reviewer, member, from settings or a Slack user group, per workspace.

A plain id in ``THREADTUNE_ADMIN_IDS`` / ``THREADTUNE_REVIEWER_IDS`` (and a plain user-group id)
holds its role in the home workspace, ``THREADTUNE_TEAM_ID``; ``T…:U…`` holds it in workspace
``T…``. Everywhere else that person is a member: an admin of one workspace is nobody in another.
"""

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


def in_team(entries: list[str] | str | None, team_id: str, home_team: str) -> list[str]:
    """The ids among ``entries`` that hold in ``team_id``: ``T…:X`` there, plain ``X`` in the home
    workspace."""
    out = []
    for entry in [entries] if isinstance(entries, str) else entries or []:
        team, _, ident = entry.rpartition(":")
        if (team or home_team) == team_id and ident:
            out.append(ident)
    return out


def role_of(settings: Settings, user_id: str, client: WebClient | None = None, *,
            team_id: str) -> Role:
    """The highest role of ``user_id`` in workspace ``team_id`` (the request envelope's team):
    admins from settings or the admin group, then reviewers."""
    home = settings.team_id
    if user_id in in_team(settings.admin_ids, team_id, home) or (client and any(
            user_id in group_members(client, g) for g in in_team(settings.admin_group, team_id, home))):
        return "admin"
    if user_id in in_team(settings.reviewer_ids, team_id, home) or (client and any(
            user_id in group_members(client, g) for g in in_team(settings.reviewer_group, team_id, home))):
        return "reviewer"
    return "member"


def has_role(settings: Settings, user_id: str, needed: Role, client: WebClient | None = None, *,
             team_id: str) -> bool:
    """Whether ``user_id`` holds ``needed`` or a higher role in ``team_id`` (admins may review)."""
    return _RANK[role_of(settings, user_id, client, team_id=team_id)] >= _RANK[needed]


def refusal(settings: Settings, needed: Role, action: str, *, team_id: str) -> str:
    """The ephemeral text for a refused action: what was refused and who can do it in workspace
    ``team_id`` (the asker's: the admins of other workspaces are none of their business)."""
    home = settings.team_id
    who = in_team(settings.admin_ids, team_id, home)
    if needed == "reviewer":
        who += [u for u in in_team(settings.reviewer_ids, team_id, home) if u not in who]
    groups = in_team(settings.admin_group if needed == "admin" else settings.reviewer_group, team_id, home)
    names = ", ".join(f"<@{u}>" for u in who) or "nobody is configured yet"
    if groups:
        names += f" and members of <!subteam^{groups[0]}>"
    env = "THREADTUNE_ADMIN_IDS" if needed == "admin" else "THREADTUNE_REVIEWER_IDS"
    return f":no_entry: Only {needed}s can {action}. Ask {names} (set in {env})."
