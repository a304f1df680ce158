"""What every listener needs: the settings, a per-thread store connection, and the workspace the
request acts in (:func:`envelope_team`, enforced by :func:`register` for every request)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.response import BoltResponse
from sqlite_utils import Database

from curation.store import connect
from curation.update_budget import UpdateBudget
from threadtune.settings import Settings

log = logging.getLogger(__name__)


def envelope_team(body: Any) -> str:
    """The workspace a request acts in, from the request envelope only: the top-level ``team_id``
    of Events API callbacks and slash commands, the top-level ``team.id`` of interactive payloads.

    Never an inner field (``user.team_id``, ``view.team_id``, ``view.app_installed_team_id``,
    ``event.team``, ``event.user_team``, ``message.team``, a button value or ``private_metadata``):
    they may name another workspace (Slack Connect, an org install) and never decide tenancy.
    ``""`` when the envelope names none.
    """
    if not isinstance(body, dict):
        return ""
    team = body.get("team_id")
    if isinstance(team, str) and team:
        return team
    team = body.get("team")
    if isinstance(team, dict) and isinstance(team.get("id"), str):
        return team["id"]
    return team if isinstance(team, str) else ""


def register(app) -> None:  # noqa: ANN001
    """Every request names its workspace in the envelope or is dropped (acknowledged, so that Slack
    does not redeliver it); bolt's own ``context.team_id``, which prefers an inner field of views,
    is replaced by the envelope's."""

    @app.middleware
    def tenancy(body, context, next):  # noqa: ANN001, A002 (bolt injects by name)
        team = envelope_team(body)
        if not team and (body.get("type") or body.get("command")) not in (None, "url_verification"):
            log.warning("dropped a request without a workspace in its envelope (type %s)",
                        str(body.get("type"))[:40])
            return BoltResponse(status=200, body="")
        context["team_id"] = team or None
        return next()


@dataclass
class BotContext:
    """Settings plus one SQLite connection per thread (bolt runs listeners on a thread pool)."""

    settings: Settings
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _updates: UpdateBudget | None = field(default=None, repr=False)

    def db(self) -> Database:
        """This thread's connection to the store."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.settings.db_path)
            self._local.db = db
        return db

    def updates(self) -> UpdateBudget:
        """The chat.update budget, shared through the store with the worker (and other bots)."""
        if self._updates is None:
            self._updates = UpdateBudget(self.settings.db_path)
        return self._updates
