"""Crash safety: `kill -9` mid-way leaves the store consistent, and a rerun completes with no
duplicates. Each case runs the real CLI (or a real writer) as a child process and kills it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation.store import connect
from tests.fakes.wait import eventually

ROOT = Path(__file__).resolve().parents[2]


def cli(data_dir: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADTUNE_", "SLACK_"))}
    env.update({"THREADTUNE_DATA_DIR": str(data_dir), "THREADTUNE_TEAM_ID": "T0FAKE", "HF_HUB_OFFLINE": "1"})
    return subprocess.Popen([sys.executable, "-m", "threadtune.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_export(folder: Path, channels: int = 4, days: int = 60, per_day: int = 150) -> int:
    """A synthetic export big enough that importing it takes a while."""
    folder.mkdir(parents=True)
    (folder / "channels.json").write_text(json.dumps(
        [{"id": f"C{c:04d}", "name": f"chan-{c}"} for c in range(channels)]))
    (folder / "users.json").write_text(json.dumps(
        [{"id": f"U{u:04d}", "name": f"user{u}", "real_name": f"User {u}"} for u in range(20)]))
    n = 0
    for c in range(channels):
        (folder / f"chan-{c}").mkdir()
        for d in range(days):
            base = 1_600_000_000 + d * 86_400
            msgs = []
            for i in range(per_day):
                ts = f"{base + i * 10}.{c:03d}100"
                root = f"{base + (i // 5) * 50}.{c:03d}100"
                msgs.append({"type": "message", "user": f"U{i % 20:04d}", "ts": ts,
                             "text": f"message {i} on day {d} about topic {i % 37} with some words",
                             **({"thread_ts": root} if i % 5 else {})})
                n += 1
            day = time.strftime("%Y-%m-%d", time.gmtime(base))
            (folder / f"chan-{c}" / f"{day}.json").write_text(json.dumps(msgs))
    return n


def wait_for_writes(db_path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the child has started writing (the WAL grows), so the kill lands mid-write."""
    wal = Path(str(db_path) + "-wal")
    start = wal.stat().st_size if wal.exists() else 0
    eventually(lambda: proc.poll() is not None or (wal.exists() and wal.stat().st_size > start + 64 * 1024),
               timeout, what="the child to start writing", interval=0.01)
    if proc.poll() is not None:
        pytest.fail(f"child finished before it could be killed: {proc.stderr.read()}")


def check_consistent(db_path: Path) -> None:
    db = connect(db_path)
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    db.execute("insert into messages_fts(messages_fts) values('integrity-check')")
    db.close()


@pytest.mark.slow
def test_kill_9_during_import_leaves_nothing_half_imported_and_rerun_completes(tmp_path):
    data = tmp_path / "data"
    assert subprocess.run([sys.executable, "-m", "threadtune.cli", "--data-dir", str(data), "init",
                           "--skip-model"], cwd=ROOT, capture_output=True).returncode == 0
    export = tmp_path / "export"
    total = write_export(export)
    db_path = data / "threadtune.db"
    proc = cli(data, "import", str(export))
    wait_for_writes(db_path, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    check_consistent(db_path)
    db = connect(db_path)
    assert db["messages"].count == 0, "a killed import must leave nothing half-imported"
    db.close()
    rerun = cli(data, "import", str(export))
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    again = cli(data, "import", str(export))
    assert again.wait(timeout=600) == 0
    db = connect(db_path)
    assert db["messages"].count == total
    dupes = db.execute("select count(*) from (select channel_id, ts from messages group by 1, 2 "
                       "having count(*) > 1)").fetchone()[0]
    assert dupes == 0
    check_consistent(db_path)


def _dataset_writer(db_path: str) -> None:
    from curation.datasets import create_dataset

    db = connect(db_path)
    create_dataset(db, "T0FAKE", created_by="crash-test")


@pytest.mark.slow
def test_kill_9_during_dataset_creation_leaves_no_partial_version(tmp_path):
    from curation.datasets import create_dataset, list_datasets

    data = tmp_path / "data"
    data.mkdir()
    db_path = data / "threadtune.db"
    db = connect(db_path)
    rows = [{"team_id": "T0FAKE", "question": f"Question number {i} about widget {i}?",
             "answer": f"Answer {i}: use widget {i}.", "status": "approved", "origin": "import",
             "dedup_key": f"k{i}", "stale": 0} for i in range(60_000)]
    db["candidates"].insert_all(rows, batch_size=5000)
    db.close()
    code = ("import sys; sys.path.insert(0, %r); from tests.security.test_crash_safety import "
            "_dataset_writer; _dataset_writer(%r)" % (str(ROOT), str(db_path)))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_writes(db_path, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    check_consistent(db_path)
    db = connect(db_path)
    assert db["datasets"].count == 0 and db["dataset_items"].count == 0
    ds = create_dataset(db, "T0FAKE", created_by="rerun")
    assert db["datasets"].count == 1
    assert db.execute("select count(*) from dataset_items where dataset_id = ?", [ds["id"]]).fetchone()[0] == 60_000
    again = create_dataset(db, "T0FAKE", created_by="rerun")
    assert again["id"] == ds["id"] and db["datasets"].count == 1
    assert [d["id"] for d in list_datasets(db, "T0FAKE")] == [ds["id"]]


@pytest.mark.slow
def test_kill_9_during_a_curation_batch_then_rerun_has_no_duplicates(tmp_path):
    from tests.curation.helpers import add_thread, add_user
    from tests.fakes.llm import FakeLLM, Reply, pairs_json

    data = tmp_path / "data"
    data.mkdir()
    db_path = data / "threadtune.db"
    db = connect(db_path)
    add_user(db, "U1", "Alice", team_id="T0FAKE")
    add_user(db, "U2", "Bob", team_id="T0FAKE")
    n = 40
    for i in range(n):
        add_thread(db, "C0HELP", f"{1700000000 + i * 100}.000100",
                   ("U1", f"How do I configure widget {i} on the staging cluster?"),
                   [("U2", f"Set widget{i}.enabled=true in config {i}.yaml and restart.")], team_id="T0FAKE")
    db.close()

    def respond(body):
        text = json.dumps(body)
        i = next((k for k in range(n - 1, -1, -1) if f"widget {k}" in text or f"widget{k}" in text), 0)
        if "rewrite" in text.lower() or "standalone" in text.lower():
            return Reply(json.dumps({"question": f"How do I configure widget {i}?",
                                     "answer": f"Set widget{i}.enabled=true in config {i}.yaml and restart."}),
                         delay_s=0.05)
        return Reply(pairs_json((f"How do I configure widget {i} on staging?",
                                 f"Set widget{i}.enabled=true in config {i}.yaml and restart.")), delay_s=0.05)

    with FakeLLM(responder=respond) as llm:
        env_extra = ["--data-dir", str(data)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADTUNE_", "SLACK_"))}
        env.update({"THREADTUNE_TEAM_ID": "T0FAKE", "THREADTUNE_LLM_BASE_URL": llm.base_url,
                    "THREADTUNE_LLM_MODEL": "fake", "HF_HUB_OFFLINE": "1"})
        cmd = [sys.executable, "-m", "threadtune.cli", *env_extra, "curate"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        eventually(lambda: proc.poll() is not None or
                   connect(db_path).execute("select count(*) from curated_sources").fetchone()[0] >= 5, 120,
                   what="five curated sources")
        assert proc.poll() is None, "curate finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        check_consistent(db_path)
        db = connect(db_path)
        partial = db.execute("select count(*) from curated_sources").fetchone()[0]
        assert 0 < partial < n
        # every source marked done has its candidates; no candidate lacks its sources
        orphans = db.execute("select count(*) from candidates c where not exists (select 1 from "
                             "candidate_sources s where s.candidate_id = c.id)").fetchone()[0]
        assert orphans == 0
        db.close()
        rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr
        again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr
    db = connect(db_path)
    assert db.execute("select count(*) from curated_sources").fetchone()[0] >= n
    dupes = db.execute("select count(*) from (select dedup_key from candidates group by dedup_key "
                       "having count(*) > 1)").fetchone()[0]
    assert dupes == 0
    per_thread = db.execute("select count(distinct s.ts) from candidate_sources s").fetchone()[0]
    assert per_thread >= n
