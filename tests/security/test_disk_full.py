"""A full disk while writing: a clear one-line error, the transaction rolled back, nothing lost.

SQLite's ``max_page_count`` caps the file, so writes past it fail exactly as on a full disk
(SQLITE_FULL, "database or disk is full")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curation.store import connect

ROOT = Path(__file__).resolve().parents[2]


def small_export(folder: Path, n: int = 3000) -> None:
    folder.mkdir()
    (folder / "channels.json").write_text(json.dumps([{"id": "C1", "name": "help"}]))
    (folder / "users.json").write_text(json.dumps([{"id": "U1", "name": "ann"}]))
    (folder / "help").mkdir()
    (folder / "help" / "2024-01-01.json").write_text(json.dumps(
        [{"type": "message", "user": "U1", "ts": f"{1704067200 + i}.000100", "text": "padding text " * 40}
         for i in range(n)]))


def test_import_on_a_full_disk_fails_cleanly_and_keeps_what_was_there(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    db = connect(data / "threadtune.db")
    db["messages"].insert({"team_id": "T0FAKE", "channel_id": "C0", "ts": "1.0", "text": "keep me"})
    pages = db.execute("pragma page_count").fetchone()[0]
    db.close()
    export = tmp_path / "export"
    small_export(export)
    code = (
        "import sqlite3, sys\n"
        "from curation import store\n"
        "orig = store.connect\n"
        "def capped(path, **kw):\n"
        "    db = orig(path, **kw)\n"
        f"    db.execute('pragma max_page_count = {pages + 40}')\n"
        "    return db\n"
        "store.connect = capped\n"
        "from threadtune.cli import main\n"
        "sys.argv = ['threadtune', 'import', sys.argv[1]]\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADTUNE_", "SLACK_"))}
    env.update({"THREADTUNE_DATA_DIR": str(data), "THREADTUNE_TEAM_ID": "T0FAKE"})
    out = subprocess.run([sys.executable, "-c", code, str(export)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "full" in out.stderr and "nothing was half-written" in out.stderr
    assert "Traceback" not in out.stderr
    db = connect(data / "threadtune.db")
    assert [r[0] for r in db.execute("select text from messages")] == ["keep me"]
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
