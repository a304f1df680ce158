"""Event ids already handled: Slack retries a delivery it thinks failed, and a retry does nothing."""

from __future__ import annotations

import datetime as dt

from sqlite_utils import Database

from curation.store import joined_transaction, now


def first_delivery(db: Database, event_id: str | None, team_id: str, *, scope: str = "") -> bool:
    """Record ``event_id`` as handled; False when it was handled before (a Slack retry).

    ``scope`` keeps independent consumers of one event apart: capture uses ``"capture"``, so that
    an answer listener calling ``first_delivery(db, event_id, team_id)`` still sees its first
    delivery. An event without an id always counts as first.
    """
    if not event_id:
        return True
    key = f"{scope}:{event_id}" if scope else event_id
    with joined_transaction(db):
        cur = db.execute("insert or ignore into events_seen (event_id, team_id, received_at) "
                         "values (?, ?, ?)", [key, team_id, now()])
    return cur.rowcount == 1


def prune_events_seen(db: Database, *, older_than_days: int = 7) -> int:
    """Forget event ids older than ``older_than_days`` (Slack retries within hours); returns how many."""
    cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than_days)).isoformat(timespec="seconds")
    with joined_transaction(db):
        return db.execute("delete from events_seen where received_at < ?", [cutoff]).rowcount
