"""The users cache: Slack user objects and the names transcripts show."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from curation.rows import user_row
from curation.store import now


def upsert_users(db: Database, team_id: str, users: Iterable[dict[str, Any]]) -> int:
    """Insert or refresh Slack user objects in the ``users`` cache."""
    at = now()
    rows = [user_row(team_id, u, at) for u in users if isinstance(u, dict) and u.get("id")]
    if rows:
        db["users"].upsert_all(rows, pk=("team_id", "id"))
    return len(rows)


def display_name(db: Database, team_id: str, user_id: str | None) -> str:
    """The name a transcript shows for ``user_id``: display name, real name, handle, or the id."""
    if not user_id:
        return "unknown"
    row = db.execute("select display_name, real_name, name from users where team_id = ? and id = ?",
                     [team_id, user_id]).fetchone()
    return next((v for v in row or () if v), user_id)
