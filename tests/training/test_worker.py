"""The worker runs training in a child process: results, cancel, a killed worker, failures, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from curation import jobs, model_versions
from curation.job_text import describe
from curation.store import connect
from tests.fakes.wait import eventually
from tests.training.conftest import TEAM, add_dataset, toy_pairs
from training import registry, worker
from training.errors import TrainingError
from training.pipeline import plan_train, queue_train

ROOT = Path(__file__).resolve().parents[2]


def _queue(db, settings, model, **overrides) -> int:
    plan = plan_train(db, TEAM, dataset="v1", preset="cpu-small",
                      overrides={"per_device_batch_size": 2, "max_length": 128, **overrides},
                      base_model=str(model), models_dir=settings.models_dir)
    return queue_train(db, TEAM, plan)


def _ctx(settings, **kw) -> worker.WorkerContext:
    return worker.WorkerContext(data_dir=settings.data_dir, models_dir=settings.models_dir,
                                heartbeat_s=0.3, kill_grace_s=5, **kw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not running anything; /proc tells
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _in_thread(settings, ctx) -> tuple[threading.Thread, list]:
    out: list = []

    def work():
        db = connect(settings.db_path)
        out.append(worker.run_one(db, ctx))

    thread = threading.Thread(target=work)
    thread.start()
    return thread, out


@pytest.mark.slow
def test_a_train_job_runs_in_a_child_and_registers_a_model(settings, db, tiny_model, store_with_dataset):
    job_id = _queue(db, settings, tiny_model, max_steps=2)
    seen = []

    class Recorder:
        def start(self, job): seen.append("start")
        def progress(self, job, progress): seen.append(progress["step"])
        def finish(self, job, files=None): seen.append(job["status"])

    job = worker.run_one(db, _ctx(settings, notifier_for=lambda j: Recorder()))
    assert job["id"] == job_id and job["status"] == "done", job["error"]
    assert seen == ["start", 1, 2, "done"]
    model = model_versions.get_model(db, TEAM, job["result"]["model"])
    assert model["job_id"] == job_id and model["dataset_id"] == job["args"]["dataset_id"]
    assert model["config"]["lineage"]["dataset"] == "v1" and model["config"]["code_version"]
    assert Path(model["adapter_path"], "adapter_model.safetensors").is_file()
    assert job["progress"]["step"] == 2 and job["pid"] is None


@pytest.mark.slow
def test_a_job_cancelled_mid_run_leaves_no_child_process(settings, db, tiny_model, store_with_dataset):
    job_id = _queue(db, settings, tiny_model, max_steps=500, save_steps=1000)
    thread, out = _in_thread(settings, _ctx(settings))
    eventually(lambda: (jobs.get(db, job_id)["progress"] or {}).get("step", 0) >= 1, 90, what="the first step")
    pid = jobs.get(db, job_id)["pid"]
    assert pid and _alive(pid)
    jobs.request_cancel(db, TEAM, job_id)
    thread.join(60)
    assert not thread.is_alive()
    assert out[0]["status"] == "cancelled"
    assert not _alive(pid)
    group = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True).stdout.split()
    assert group == []
    assert model_versions.list_models(db, TEAM) == []


@pytest.mark.slow
def test_a_killed_workers_job_is_marked_interrupted_and_resumes_from_its_checkpoint(
        settings, db, tiny_model, store_with_dataset):
    job_id = _queue(db, settings, tiny_model, max_steps=400, save_steps=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "training.worker", "--data-dir", str(settings.data_dir),
                             "--once"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: (jobs.get(db, job_id)["progress"] or {}).get("step", 0) >= 2, 90, what="two steps")
        child = jobs.get(db, job_id)["pid"]
        proc.kill()
        proc.wait()
        eventually(lambda: not _alive(child), 30, what="the training child to die with its worker")
    finally:
        proc.kill()
    assert jobs.recover_stale(db) == [job_id]
    assert jobs.get(db, job_id)["status"] == "interrupted"
    run_dir = settings.data_dir / "runs" / f"job-{job_id}"
    assert list((run_dir / "checkpoints").glob("checkpoint-*"))
    jobs.resume(db, TEAM, job_id)
    # finish quickly: the resumed run continues from its checkpoint up to a lower max_steps
    import json

    spec = json.loads((run_dir / "spec.json").read_text())
    db.execute("update jobs set args = json_set(args, '$.overrides.max_steps', 3) where id = ?", [job_id])
    db.conn.commit()
    assert spec["config"]["max_steps"] == 400
    done = worker.run_one(db, _ctx(settings))
    assert done["status"] == "done", done["error"]
    assert done["result"]["resumed_from"] and "checkpoint-" in done["result"]["resumed_from"]


@pytest.mark.slow
def test_a_child_killed_like_by_the_oom_killer_fails_the_job_with_the_reason(
        settings, db, tiny_model, store_with_dataset):
    job_id = _queue(db, settings, tiny_model, max_steps=500, save_steps=1000)
    thread, out = _in_thread(settings, _ctx(settings))
    eventually(lambda: (jobs.get(db, job_id)["progress"] or {}).get("step", 0) >= 1, 90, what="the first step")
    os.kill(jobs.get(db, job_id)["pid"], signal.SIGKILL)
    thread.join(60)
    job = out[0]
    assert job["status"] == "failed"
    assert "killed by SIGKILL" in job["error"] and "out-of-memory" in job["error"]


def test_bad_input_is_refused_before_queueing_with_every_problem_named(settings, db):
    add_dataset(db, toy_pairs(2), n_eval=2)  # no train rows
    with pytest.raises(TrainingError) as err:
        plan_train(db, TEAM, dataset="v1", preset="gpu-huge", overrides={}, base_model="/nowhere/model",
                   models_dir=settings.models_dir)
    text = str(err.value)
    assert "no train rows" in text and "gpu-huge" in text and "/nowhere/model" in text
    assert jobs.list_jobs(db, TEAM) == []


def test_an_unknown_dataset_version_is_refused(settings, db, tmp_path):
    add_dataset(db, toy_pairs(4))
    with pytest.raises(TrainingError, match="'v5' not found.*known versions: v1"):
        plan_train(db, TEAM, dataset="v5", preset="cpu-small", overrides={}, base_model=str(tmp_path),
                   models_dir=settings.models_dir)


def test_a_job_that_fails_validation_in_the_worker_is_failed_with_the_reason(settings, db, tiny_model):
    add_dataset(db, toy_pairs(4), n_eval=1)
    job_id = jobs.enqueue(db, TEAM, "train", {"dataset": "v1", "preset": "cpu-small",
                                              "overrides": {"lora_r": 0}, "base_model": str(tiny_model)})
    job = worker.run_one(db, _ctx(settings))
    assert job["id"] == job_id and job["status"] == "failed" and "lora_r must be at least 1" in job["error"]
    assert model_versions.list_models(db, TEAM) == []


def test_a_missing_base_model_fails_the_job_with_the_fix(settings, db):
    add_dataset(db, toy_pairs(4), n_eval=1)
    jobs.enqueue(db, TEAM, "train", {"dataset": "v1", "preset": "cpu-small", "base_model": "/gone/model"})
    job = worker.run_one(db, _ctx(settings))
    assert job["status"] == "failed" and "/gone/model" in job["error"] and "THREADTUNE_BASE_MODEL" in job["error"]


def test_queued_promotions_run_first_and_refusals_fail_the_job(settings, db):
    from tests.training.test_registry import _model

    _model(db, 0.4)
    registry.promote(db, TEAM, "v1")
    _model(db, 0.3)
    jobs.enqueue(db, TEAM, "train", {"dataset": "v1"})
    refused = jobs.enqueue(db, TEAM, "promote", {"model": "v2"})
    forced = jobs.enqueue(db, TEAM, "promote", {"model": "v2", "force": True})
    assert worker.run_admin_jobs(db, _ctx(settings)) == 2
    assert jobs.get(db, refused)["status"] == "failed" and "below the live v1" in jobs.get(db, refused)["error"]
    assert jobs.get(db, forced)["status"] == "done" and model_versions.live_model(db, TEAM)["name"] == "v2"
    rollback = jobs.enqueue(db, TEAM, "rollback", {})
    assert worker.run_one(db, _ctx(settings))["id"] == rollback
    assert model_versions.live_model(db, TEAM)["name"] == "v1"


def test_exit_reasons_name_the_signal():
    assert "SIGKILL" in worker.exit_reason(-9) and "out-of-memory" in worker.exit_reason(-9)
    assert worker.exit_reason(3) == "training process exited with code 3"


def test_in_process_work_keeps_the_heartbeat_fresh(settings, db):
    job_id = jobs.enqueue(db, TEAM, "eval", {})
    jobs.claim_next(db, jobs.worker_id())
    db.execute("update jobs set heartbeat_at = '2000-01-01T00:00:00+00:00' where id = ?", [job_id])
    db.conn.commit()
    with worker.beating(db, job_id, 0.05):
        eventually(lambda: jobs.get(db, job_id)["heartbeat_at"] > "2020", 5, what="a fresh heartbeat")
    assert jobs.recover_stale(db) == []


def test_curate_jobs_run_through_the_callable_the_entrypoint_gives(settings, db):
    job_id = jobs.enqueue(db, TEAM, "curate", {"limit": 5})
    assert worker.run_one(db, _ctx(settings)) is None  # `python -m training.worker` cannot curate:
    assert jobs.get(db, job_id)["status"] == "queued"  # the job waits for a worker that can
    seen = []

    def curate(d, team, args, progress):
        progress(3, 8, "thread")  # the heartbeat stores it: `jobs` lists show how far it got
        seen.append((team, args, eventually(lambda: jobs.get(d, job_id)["progress"], 5, what="stored progress")))
        return {"candidates": {"pending": 2}}

    job = worker.run_one(db, _ctx(settings, curate=curate))
    assert job["status"] == "done" and job["result"] == {"candidates": {"pending": 2}}
    assert seen == [(TEAM, {"limit": 5}, {"step": 3, "total": 8, "phase": "thread"})]
    assert describe({**jobs.get(db, job_id), "status": "running"}).endswith("curate running 3/8 sources")


def test_plans_train_on_question_forms_with_the_schedule_of_the_pairs(settings, db, tiny_model):
    add_dataset(db, [("Terraform: Error acquiring the state lock", "Run `terraform force-unlock ID`."),
                     *toy_pairs(3)], n_eval=1)
    plan = plan_train(db, TEAM, dataset="v1", preset="cpu-small", overrides={}, base_model=str(tiny_model),
                      models_dir=settings.models_dir)
    plain = plan_train(db, TEAM, dataset="v1", preset="cpu-small", overrides={"question_forms": False},
                       base_model=str(tiny_model), models_dir=settings.models_dir)
    n_pairs = len(plain.train_rows)
    questions = [r["messages"][-2]["content"] for r in plan.train_rows]
    assert "Error acquiring the state lock" in questions and "Error acquiring state lock" in questions
    assert len(plan.train_rows) > n_pairs and {r["messages"][-1]["content"] for r in plan.train_rows} == \
        {r["messages"][-1]["content"] for r in plain.train_rows}
    # the forms are more views of the same pairs: the derived epochs and rate do not change
    assert (plan.config.epochs, plan.config.learning_rate) == (plain.config.epochs, plain.config.learning_rate)
