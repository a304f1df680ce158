"""The SQLite store: migrations, WAL + busy timeout, concurrent writers, FTS, transactions."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from curation.errors import StoreError
from curation.schema import migrations
from curation.status import status_counts
from curation.store import connect, schema_version, transaction

TABLES = {"workspaces", "channels", "users", "messages", "events_seen", "documents", "candidates",
          "candidate_sources", "reviews", "audit", "datasets", "dataset_items", "jobs", "models",
          "answers", "feedback"}


def test_migrations_create_every_table_from_an_empty_file(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    db = connect(path)
    assert TABLES <= set(db.table_names())
    assert schema_version(db) == [m.name for m in migrations._migrations]
    assert db.journal_mode == "wal"


def test_migrations_apply_from_every_earlier_version(tmp_path):
    names = [m.name for m in migrations._migrations]
    for i, name in enumerate(names):
        path = tmp_path / f"at-{i}.db"
        from sqlite_utils import Database

        old = Database(path)
        migrations.apply(old, stop_before=name)
        assert schema_version(old) == names[:i]
        old.close()
        db = connect(path)
        assert schema_version(db) == names
        assert TABLES <= set(db.table_names())
        db.close()


def test_reopening_applies_nothing_twice(tmp_path):
    path = tmp_path / "s.db"
    connect(path).close()
    db = connect(path)
    assert len(schema_version(db)) == len(set(schema_version(db)))


def test_missing_data_dir_gives_clear_error(tmp_path):
    with pytest.raises(StoreError, match="threadtune init"):
        connect(tmp_path / "nope" / "threadtune.db")


def test_corrupt_file_gives_clear_error(tmp_path):
    path = tmp_path / "bad.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="bad.db"):
        connect(path)


def _writer(path: str, worker: int, n: int) -> None:
    db = connect(path)
    for i in range(n):
        with transaction(db):
            db["messages"].insert({"team_id": "T1", "channel_id": f"C{worker}", "ts": f"{i}.0001",
                                   "text": f"worker {worker} message {i}", "source": "test"})
    db.close()


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "s.db"
    connect(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 300)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    db = connect(path)
    assert db["messages"].count == 600
    assert db.execute("select count(distinct channel_id || ts) from messages").fetchone()[0] == 600


def test_fts_finds_messages_and_approved_pairs(db):
    db["messages"].insert_all([
        {"team_id": "T1", "channel_id": "C1", "ts": "1.0", "text": "How do I reset the VPN password?"},
        {"team_id": "T1", "channel_id": "C1", "ts": "2.0", "text": "Lunch is at noon"},
    ])
    hits = list(db["messages"].search("vpn"))
    assert [h["ts"] for h in hits] == ["1.0"]
    db["candidates"].insert({"team_id": "T1", "question": "Where is the expense form?",
                             "answer": "At https://expenses.acme.internal", "status": "approved"})
    hits = list(db["candidates"].search("expense", where="status = 'approved'"))
    assert len(hits) == 1
    # the FTS index follows updates and deletes (triggers)
    db["messages"].update(("T1", "C1", "1.0"), {"text": "deleted"})
    assert list(db["messages"].search("vpn")) == []


def test_transaction_rolls_back_every_row_on_error(db):
    with pytest.raises(RuntimeError):
        with transaction(db):
            db["channels"].insert({"team_id": "T1", "id": "C1", "name": "a"})
            db["channels"].insert({"team_id": "T1", "id": "C2", "name": "b"})
            raise RuntimeError("boom")
    assert db["channels"].count == 0


def test_rows_are_keyed_by_team(db):
    db["channels"].insert_all([{"team_id": "T1", "id": "C1", "name": "help"},
                               {"team_id": "T2", "id": "C1", "name": "help"}])
    db["messages"].insert_all([
        {"team_id": "T1", "channel_id": "C1", "ts": "1.0", "text": "q", "thread_ts": "1.0"},
        {"team_id": "T1", "channel_id": "C1", "ts": "2.0", "text": "a", "thread_ts": "1.0"},
        {"team_id": "T2", "channel_id": "C1", "ts": "1.0", "text": "other team"},
    ])
    t1, t2 = status_counts(db, "T1"), status_counts(db, "T2")
    assert (t1["channels"], t1["messages"], t1["threads"]) == (1, 2, 1)
    assert (t2["channels"], t2["messages"], t2["threads"]) == (1, 1, 0)


def test_busy_timeout_is_set(db):
    assert db.execute("pragma busy_timeout").fetchone()[0] >= 5000
    assert isinstance(db.conn, sqlite3.Connection)
