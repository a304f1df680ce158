"""The jobs table: queue, claim, cancel, recover a dead worker's job, resume."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from curation import jobs
from curation.errors import JobError
from curation.job_text import describe
from tests.training.conftest import TEAM


def test_jobs_are_claimed_oldest_first_and_only_once(db):
    first = jobs.enqueue(db, TEAM, "train", {"dataset": "v1"})
    second = jobs.enqueue(db, TEAM, "eval", {"model": "v1"})
    assert jobs.claim_next(db, "w1")["id"] == first
    assert jobs.claim_next(db, "w2")["id"] == second
    assert jobs.claim_next(db, "w3") is None
    assert jobs.get(db, first)["status"] == "running" and jobs.get(db, first)["worker"] == "w1"


def test_an_unknown_kind_is_refused(db):
    with pytest.raises(JobError, match="'bake' is unknown"):
        jobs.enqueue(db, TEAM, "bake", {})


def test_cancelling_a_queued_job_ends_it_at_once_and_a_running_one_flags_it(db):
    queued = jobs.enqueue(db, TEAM, "train", {})
    running = jobs.enqueue(db, TEAM, "train", {})
    assert jobs.request_cancel(db, TEAM, queued)["status"] == "cancelled"
    jobs.claim_next(db, "w")
    assert jobs.request_cancel(db, TEAM, running)["status"] == "running"
    assert jobs.heartbeat(db, running) is True  # the worker learns of it on its next heartbeat
    with pytest.raises(JobError, match="already cancelled"):
        jobs.request_cancel(db, TEAM, queued)


def test_a_job_of_another_team_is_not_found(db):
    job_id = jobs.enqueue(db, "T0OTHER", "train", {})
    with pytest.raises(JobError, match="not found"):
        jobs.request_cancel(db, TEAM, job_id)


def test_a_job_whose_worker_process_is_gone_becomes_interrupted(db):
    job_id = jobs.enqueue(db, TEAM, "train", {})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = jobs.worker_id().rpartition(":")[0]
    jobs.claim_next(db, f"{host}:{dead.pid}")
    alive = jobs.enqueue(db, TEAM, "train", {})
    jobs.claim_next(db, jobs.worker_id())
    assert jobs.recover_stale(db) == [job_id]
    assert jobs.get(db, job_id)["status"] == "interrupted" and jobs.get(db, alive)["status"] == "running"


def test_a_job_with_a_stale_heartbeat_becomes_interrupted(db):
    job_id = jobs.enqueue(db, TEAM, "train", {})
    jobs.claim_next(db, "elsewhere:1")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=jobs.STALE_AFTER_S + 5)
    assert jobs.recover_stale(db, now_=dt.datetime.now(dt.UTC)) == []
    assert jobs.recover_stale(db, now_=later) == [job_id]


def test_resume_requeues_an_interrupted_job_with_resume_set(db):
    job_id = jobs.enqueue(db, TEAM, "train", {"dataset": "v1"})
    jobs.claim_next(db, "elsewhere:1")
    with pytest.raises(JobError, match="is running"):
        jobs.resume(db, TEAM, job_id)
    jobs.recover_stale(db, stale_after_s=-1)
    job = jobs.resume(db, TEAM, job_id)
    assert job["status"] == "queued" and job["args"] == {"dataset": "v1", "resume": True}


def test_describe_shows_progress_and_result():
    running = {"id": 3, "kind": "train", "status": "running", "error": None, "result": {},
               "progress": {"step": 5, "total": 40, "loss": 1.23456, "tokens_per_s": 80.2, "eta_s": 120.7}}
    assert describe(running) == "#3 train running step 5/40 loss 1.235 80 tok/s ETA 120s"
    done = {**running, "status": "done", "result": {"model": "v2"}}
    assert describe(done) == "#3 train done → model v2"
