"""The full-text index on messages: bulk indexing for imports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlite_utils import Database


@contextmanager
def deferred_fts(db: Database) -> Iterator[None]:
    """Inside an open transaction: index the messages written in the block in one pass at its end.

    The per-row FTS triggers cost about ten times the insert itself; a bulk ``INSERT … SELECT``
    into the index costs less than the insert. The triggers are dropped for the block and
    restored before it ends (inside the same transaction, so a failure rolls the drop back too).
    Rows that existed before the block keep a temporary per-row trigger, so an update to one of
    them still moves its old text out of the index.
    """
    if not db.conn.in_transaction:
        raise RuntimeError("deferred_fts needs an open transaction")
    triggers = db.execute(
        "select name, sql from sqlite_master where type = 'trigger' and tbl_name = 'messages' "
        "and sql like '%messages_fts%'").fetchall()
    last = int(db.execute("select coalesce(max(rowid), 0) from messages").fetchone()[0])
    for name, _ in triggers:
        db.execute(f'drop trigger "{name}"')
    db.execute(
        f"create temp trigger threadtune_fts_old_rows after update on main.messages "
        f"when old.rowid <= {last} begin "
        "insert into messages_fts (messages_fts, rowid, text) values ('delete', old.rowid, old.text); "
        "insert into messages_fts (rowid, text) values (new.rowid, new.text); end")
    try:
        yield
        db.execute(f"insert into messages_fts (rowid, text) select rowid, text from messages "
                   f"where rowid > {last}")
    finally:
        db.execute("drop trigger if exists temp.threadtune_fts_old_rows")
    for _, sql in triggers:
        db.execute(sql)
