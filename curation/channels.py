"""The channels table and its watch list: which channels live capture and backfill collect."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from curation.store import joined_transaction, now


def upsert_channels(db: Database, team_id: str, channels: Iterable[dict[str, Any]]) -> int:
    """Insert or rename channels (``{id, name, is_private, is_im}``); the watched flag is kept."""
    at = now()
    rows = [(team_id, c["id"], c.get("name") or c["id"], int(bool(c.get("is_private"))),
             int(bool(c.get("is_im"))), at) for c in channels]
    with joined_transaction(db):
        db.conn.executemany(
            "INSERT INTO channels (team_id, id, name, is_private, is_im, watched, created_at) "
            "VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (team_id, id) DO UPDATE SET "
            "name = CASE WHEN excluded.name = excluded.id THEN channels.name ELSE excluded.name END, "
            "is_private = excluded.is_private, is_im = excluded.is_im",
            rows,
        )
    return len(rows)


def upsert_channel(db: Database, team_id: str, channel_id: str, name: str | None = None, *,
                   is_private: bool = False, is_im: bool = False) -> None:
    """Insert or rename one channel; the watched flag is kept."""
    upsert_channels(db, team_id, [{"id": channel_id, "name": name, "is_private": is_private,
                                   "is_im": is_im}])


def set_watched(db: Database, team_id: str, channel_id: str, watched: bool, by: str,
                name: str | None = None) -> None:
    """Watch or unwatch a channel (creating its row when needed)."""
    with joined_transaction(db):
        if name or not db.execute("select 1 from channels where team_id = ? and id = ?",
                                  [team_id, channel_id]).fetchone():
            upsert_channel(db, team_id, channel_id, name)
        db.execute("update channels set watched = ?, watched_by = ? where team_id = ? and id = ?",
                   [int(watched), by, team_id, channel_id])


def is_watched(db: Database, team_id: str, channel_id: str) -> bool:
    """Whether live capture and backfill collect ``channel_id``."""
    row = db.execute("select watched from channels where team_id = ? and id = ?",
                     [team_id, channel_id]).fetchone()
    return bool(row and row[0])
