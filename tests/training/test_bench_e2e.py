"""bench/train_e2e.py: the stores of the timed whole runs, the per-run bench lock, the comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import train_e2e  # noqa: E402


def test_old_vs_new_reports_the_time_ratio_and_the_loss_gap():
    runs = {"new": {"train": {"wall_s": 300.0, "train_loss": 0.102, "last_loss": 0.004}},
            "old": {"train": {"wall_s": 1200.0, "train_loss": 0.100, "last_loss": 0.005}}}
    out = train_e2e.old_vs_new(runs)
    assert out["time_ratio"] == 0.25 and out["goal_time_ratio"] == 0.5
    assert out["train_loss_gap"] == pytest.approx(0.02) and out["last_loss"] == {"new": 0.004, "old": 0.005}


def test_the_bench_lock_is_held_for_the_block_and_released_after(tmp_path):
    lock = tmp_path / "bench.lock"
    probe = [sys.executable, "-c", "import fcntl, sys\nf = open(sys.argv[1], 'a')\n"
             "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n",
             str(lock)]
    with train_e2e.bench_lock(str(lock)):
        assert subprocess.run(probe, timeout=30).returncode == 3  # another process must wait
    assert subprocess.run(probe, timeout=30).returncode == 0
    with train_e2e.bench_lock(None):  # no lock asked for: the block just runs
        pass


def test_a_run_keeps_its_environment_to_itself(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with train_e2e.environment({"GOMP_SPINCOUNT": "300000", "PATH": "/usr/bin"}):
        assert "OMP_WAIT_POLICY" not in os.environ and os.environ["GOMP_SPINCOUNT"] == "300000"
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and "GOMP_SPINCOUNT" not in os.environ


def test_the_demo_store_holds_the_demos_dataset_and_a_used_data_dir_is_refused(tmp_path):
    from curation.dataset_lookup import resolve_dataset

    db, team, name = train_e2e.demo_store(tmp_path / "new")
    ds = resolve_dataset(db, team, name)
    assert name == "v1" and ds["n_train"] >= 30 and ds["n_eval"] >= 1
    args = type("Args", (), {"data_dir": str(tmp_path), "lock": None})()
    with pytest.raises(SystemExit, match="earlier run"):
        train_e2e.demo_train_run("new", {}, {}, args)


@pytest.mark.realdata
def test_the_acceptance_store_holds_the_pairs_and_their_held_out_questions(tmp_path, shared_data):
    questions = ROOT / "tests" / "training" / "data" / "faq-paraphrases.jsonl"
    db = train_e2e.acceptance_store(tmp_path / "new", 60, questions)
    splits = dict(db.execute("select split, count(*) from dataset_items group by split").fetchall())
    assert splits == {"train": 60, "eval": len(questions.read_text().splitlines())}
    assert db.execute("select count(*) from candidates where status = 'approved'").fetchone()[0] == 60
    linked = db.execute("select count(*) from dataset_items where split = 'train' and candidate_id is not null")
    assert linked.fetchone()[0] == 60
    with pytest.raises(SystemExit, match="earlier run"):
        train_e2e.acceptance_store(tmp_path / "new", 60, questions)
    assert json.loads(questions.read_text().splitlines()[0])["source_id"]
