"""The store's connection: one SQLite file, WAL mode, a busy timeout, the schema migrated on open.

The bot, the worker and the CLI each open their own connection with :func:`connect`. The tables
are defined in :mod:`curation.schema`. This module also holds the small helpers every writer uses:
transactions, timestamps, JSON-in-TEXT columns and the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from curation.errors import StoreError
from curation.schema import migrations

BUSY_TIMEOUT_MS = 30_000


def now() -> str:
    """UTC timestamp as ISO text, the one format every table uses."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def connect(path: Path | str, *, migrate: bool = True) -> Database:
    """Open the store at ``path`` in WAL mode with a busy timeout, applying pending migrations.

    Each process (and each thread of the bot) opens its own connection.
    """
    path = Path(path)
    if not path.parent.exists():
        raise StoreError(f"data dir {path.parent} does not exist; run `threadtune init` first")
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        # Deleted content is overwritten with zeros, not left in free space: erasure reaches the
        # bytes. Set here, never left to the SQLite build's compile-time default.
        conn.execute("PRAGMA secure_delete=ON")
        db = Database(conn)
        if db.journal_mode != "wal":
            db.enable_wal()
        conn.execute("PRAGMA synchronous=NORMAL")
        if migrate:
            migrations.apply(db)
    except sqlite3.DatabaseError as err:
        raise StoreError(f"{path}: not a usable threadtune store ({err})") from None
    return db


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """One immediate write transaction: nothing is half-written, and the write lock is taken up
    front so that concurrent writers queue on the busy timeout instead of failing mid-way."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    else:
        db.conn.commit()


def schema_version(db: Database) -> list[str]:
    """Names of applied migrations, oldest first."""
    return [m.name for m in migrations.applied(db)]


def dumps(value: Any) -> str:
    """Compact JSON for JSON-in-TEXT columns."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def loads(value: str | None, default: Any = None) -> Any:
    """Parse a JSON-in-TEXT column, tolerating NULL."""
    if value in (None, ""):
        return default
    return json.loads(value)


def audit(db: Database, team_id: str, actor: str, action: str, target: str = "", *,
          detail: Any = None, via: str = "cli") -> None:
    """Append one row to the audit log of privileged actions."""
    db["audit"].insert(
        {"team_id": team_id, "actor": actor, "action": action, "target": target,
         "detail": dumps(detail) if detail is not None else None, "via": via, "at": now()}
    )


def joined_transaction(db: Database) -> AbstractContextManager:
    """A write transaction, or nothing when the caller holds one already: its rollback covers
    ours, and the savepoint a nested transaction would open costs a live event two statements."""
    return nullcontext() if db.conn.in_transaction else transaction(db)
