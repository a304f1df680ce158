"""The channels table: the watch list (which channels live capture and backfill collect), each
channel's real privacy (kept current from Slack), and the admin's visibility flags."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from curation.store import joined_transaction, now


def _flag(value: Any) -> int | None:
    return None if value is None else int(bool(value))


def upsert_channels(db: Database, team_id: str, channels: Iterable[dict[str, Any]]) -> int:
    """Insert or rename channels (``{id, name, is_private, is_im}``); the watched flag is kept, and
    so is the stored privacy where a channel's is None (unknown)."""
    at = now()
    rows = [(team_id, c["id"], c.get("name") or c["id"], _flag(c.get("is_private")),
             _flag(c.get("is_im")), at) for c in channels]
    with joined_transaction(db):
        db.conn.executemany(
            "INSERT INTO channels (team_id, id, name, is_private, is_im, watched, created_at) "
            "VALUES (?, ?, ?, coalesce(?4, 0), coalesce(?5, 0), 0, ?6) "
            "ON CONFLICT (team_id, id) DO UPDATE SET "
            "name = CASE WHEN excluded.name = excluded.id THEN channels.name ELSE excluded.name END, "
            "is_private = coalesce(?4, channels.is_private), is_im = coalesce(?5, channels.is_im)",
            rows,
        )
    return len(rows)


def upsert_channel(db: Database, team_id: str, channel_id: str, name: str | None = None, *,
                   is_private: bool | None = None, is_im: bool | None = None) -> None:
    """Insert or rename one channel; the watched flag is kept, and the privacy when not given."""
    upsert_channels(db, team_id, [{"id": channel_id, "name": name, "is_private": is_private,
                                   "is_im": is_im}])


#: Slack's ``channel_type`` of a message event: (is_private, is_im).
CHANNEL_TYPES = {"channel": (False, False), "group": (True, False), "mpim": (True, True),
                 "im": (True, True)}


def note_channel_type(db: Database, team_id: str, channel_id: str, channel_type: Any) -> None:
    """Keep a channel's privacy current from the ``channel_type`` of an event in it (a channel
    converted to private says so in its next message). One indexed no-op when nothing changed."""
    if not isinstance(channel_type, str) or channel_type not in CHANNEL_TYPES:
        return
    private, im = CHANNEL_TYPES[channel_type]
    db.execute("update channels set is_private = ?, is_im = ? where team_id = ? and id = ? and "
               "(is_private != ? or is_im != ?)", [int(private), int(im), team_id, channel_id,
                                                   int(private), int(im)])


def set_visibility(db: Database, team_id: str, channel_id: str, *, shared: bool | None = None,
                   trainable: bool | None = None) -> dict[str, Any]:
    """Set an admin's flags on a channel: ``shared`` (its pairs answer anywhere) and ``trainable``
    (its pairs go into datasets). Returns the channel row; NotFound when the channel is unknown."""
    from curation.errors import NotFound

    with joined_transaction(db):
        if db.execute("select 1 from channels where team_id = ? and id = ?",
                      [team_id, channel_id]).fetchone() is None:
            raise NotFound(f"channel {channel_id} is not known in team {team_id}; watch it first")
        db.execute("update channels set shared = coalesce(?, shared), trainable = coalesce(?, "
                   "trainable) where team_id = ? and id = ?",
                   [_flag(shared), _flag(trainable), team_id, channel_id])
        return dict(next(db.query("select * from channels where team_id = ? and id = ?",
                                  [team_id, channel_id])))


def set_watched(db: Database, team_id: str, channel_id: str, watched: bool, by: str,
                name: str | None = None, *, is_private: bool | None = None,
                is_im: bool | None = None) -> None:
    """Watch or unwatch a channel (creating its row when needed). The privacy is kept unless
    given (from ``conversations.info``)."""
    with joined_transaction(db):
        if name or is_private is not None or not db.execute(
                "select 1 from channels where team_id = ? and id = ?", [team_id, channel_id]).fetchone():
            upsert_channel(db, team_id, channel_id, name, is_private=is_private, is_im=is_im)
        db.execute("update channels set watched = ?, watched_by = ? where team_id = ? and id = ?",
                   [int(watched), by, team_id, channel_id])


def is_watched(db: Database, team_id: str, channel_id: str) -> bool:
    """Whether live capture and backfill collect ``channel_id``."""
    row = db.execute("select watched from channels where team_id = ? and id = ?",
                     [team_id, channel_id]).fetchone()
    return bool(row and row[0])
