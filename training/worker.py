"""The worker: runs queued jobs one at a time. Training runs in a child process.

The child (``python -m training.sft`` or ``accelerate launch``) gets its own process group and dies
with the worker (``PR_SET_PDEATHSIG``), so a cancel kills the whole group and frees its memory, and
a killed worker leaves no orphan training on. The worker reads the child's ``@@progress`` lines,
stores them with a heartbeat in the job row, passes them to the job's notifier, and checks the
job's cancel flag. On start, and between jobs, running jobs whose worker died become ``interrupted``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from curation import jobs
from serving.process import spawn, stop_process_group
from training import registry
from training.errors import RegistryError, TrainingError
from training.notify import Notifier, SilentNotifier
from training.sft import ERROR_PREFIX, PROGRESS_PREFIX, RESULT_PREFIX, RunSpec, accelerate_command, write_spec

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class WorkerContext:
    """What the worker needs from the settings, passed in by its entrypoint."""

    data_dir: Path
    models_dir: Path
    base_model: str = "embedded"
    notifier_for: Callable[[dict[str, Any]], Notifier] = field(default=lambda job: SilentNotifier())
    heartbeat_s: float = 5.0
    kill_grace_s: float = 10.0
    stale_after_s: float = jobs.STALE_AFTER_S
    python: str = sys.executable
    #: Runs a ``curate`` job: ``curate(db, team_id, args, progress) -> result dict``, where
    #: ``progress(done, total, label)`` reports sources done. The CLI passes curation's run with the
    #: settings (it serves the model for the run); None: this worker leaves curate jobs queued.
    curate: Callable[[Any, str, dict[str, Any], Callable[[int, int, str], None]], dict[str, Any]] | None = None

    @property
    def runs_dir(self) -> Path:
        """One folder per job: train file, spec, checkpoints, adapter, log."""
        return self.data_dir / "runs"


def exit_reason(returncode: int) -> str:
    """Why a child that left no ``@@error`` line ended."""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (the kernel's out-of-memory killer sends SIGKILL: lower per_device_batch_size or " \
               "max_length)" if returncode == -signal.SIGKILL else ""
        return f"training process killed by {name}{hint}"
    return f"training process exited with code {returncode}"


def _reader(stream: Any, out: queue.Queue) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


def run_train(db: Any, job: dict[str, Any], ctx: WorkerContext, notifier: Notifier) -> dict[str, Any]:
    """Train one claimed ``train`` job in a child process; returns the finished job row."""
    from curation.datasets import record_export, write_jsonl
    from training.pipeline import plan_train

    args = job["args"]
    plan = plan_train(db, job["team_id"], dataset=args.get("dataset_id") or args.get("dataset"),
                      preset=args.get("preset", "cpu-small"), overrides=args.get("overrides") or {},
                      base_model=args.get("base_model") or ctx.base_model, models_dir=ctx.models_dir)
    run_dir = ctx.runs_dir / f"job-{job['id']}"
    resume = bool(args.get("resume"))
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(plan.train_rows, run_dir / "train.jsonl")
    record_export(db, job["team_id"], plan.dataset["id"], run_dir / "train.jsonl")  # erasure removes it
    lineage = {"team_id": job["team_id"], "job_id": job["id"], "dataset_id": plan.dataset["id"],
               "dataset": plan.dataset["name"], "base_model_spec": plan.base_model_spec}
    spec = RunSpec(plan.config, plan.base_model_path, str(run_dir / "train.jsonl"), str(run_dir), lineage, resume)
    cmd = accelerate_command(write_spec(spec, run_dir / "spec.json"), plan.config, python=ctx.python)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    with (run_dir / "train.log").open("a") as log:
        proc = spawn(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=PROJECT_ROOT,
                     tie=True)  # this thread waits for the child
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    jobs.heartbeat(db, job["id"], pid=proc.pid, progress={"phase": "loading", "step": 0})
    notifier.start(job)
    progress: dict[str, Any] = {}
    result: dict[str, Any] | None = None
    error: str | None = None
    cancelled, eof = False, False
    last_beat = time.monotonic()
    while not eof:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            line = ""
        if line is None:
            eof = True
        elif line.startswith(PROGRESS_PREFIX):
            progress = json.loads(line[len(PROGRESS_PREFIX):])
            notifier.progress(job, progress)
        elif line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
        elif line.startswith(ERROR_PREFIX):
            error = json.loads(line[len(ERROR_PREFIX):])["reason"]
        if time.monotonic() - last_beat >= ctx.heartbeat_s or eof or (line and line.startswith(PROGRESS_PREFIX)
                                                                      and time.monotonic() - last_beat >= 1):
            last_beat = time.monotonic()
            if jobs.heartbeat(db, job["id"], progress=progress or None) and not cancelled:
                cancelled = True
                stop_process_group(proc, ctx.kill_grace_s)
            run_admin_jobs(db, ctx)
    stop_process_group(proc, ctx.kill_grace_s)
    if cancelled:
        return jobs.finish(db, job["id"], "cancelled", result={"progress": progress},
                           error="cancelled on request")
    if proc.returncode == 0 and result is not None:
        run = json.loads((Path(result["adapter_path"]) / "run.json").read_text())
        model = registry.register_model(
            db, job["team_id"], base_model=plan.base_model_path, adapter_path=result["adapter_path"],
            dataset_id=plan.dataset["id"], job_id=job["id"],
            config={**run["config"], "lineage": lineage, "code_version": run["code_version"]},
            metrics={"train": result})
        return jobs.finish(db, job["id"], "done", result={**result, "model": model["name"]})
    reason = error or exit_reason(proc.returncode)
    return jobs.finish(db, job["id"], "failed", error=f"{reason} (log: {run_dir / 'train.log'})")


@contextlib.contextmanager
def beating(db: Any, job_id: int, interval_s: float,
            progress: dict[str, Any] | None = None) -> Iterator[None]:
    """Keep a job's heartbeat fresh from a thread (own connection) while in-process work runs;
    with ``progress``, each beat also stores its current content (the work updates it in place)."""
    from curation.store import connect

    path = db.execute("pragma database_list").fetchone()[2]
    stop = threading.Event()

    def beat() -> None:
        own = connect(path, migrate=False)
        try:
            while not stop.wait(interval_s):
                jobs.heartbeat(own, job_id, progress=dict(progress) if progress else None)
        finally:
            own.close()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_eval(db: Any, job: dict[str, Any], ctx: WorkerContext, notifier: Notifier) -> dict[str, Any]:
    """Evaluate a model in-process (generation only, no child needed); returns the finished job."""
    from training.pipeline import evaluate_model

    args = job["args"]
    notifier.start(job)
    with beating(db, job["id"], ctx.heartbeat_s):
        report = evaluate_model(
            db, job["team_id"], args.get("model", "latest"), out_dir=ctx.data_dir / "reports",
            dataset=args.get("dataset"), eval_file=Path(args["eval_file"]) if args.get("eval_file") else None,
            max_new_tokens=int(args.get("max_new_tokens", 128)),
            progress=lambda system, n, total: notifier.progress(job, {"step": n, "total": total,
                                                                      "phase": system}))
    done = jobs.finish(db, job["id"], "done", result={
        "model": report["model"], "split": report["split"], "n": report["n"],
        "systems": report["systems"], "files": report["files"]})
    notifier.finish(done, files=[Path(report["files"]["chart"])])
    return done


def run_promote(db: Any, job: dict[str, Any], ctx: WorkerContext, notifier: Notifier) -> dict[str, Any]:
    """Apply a queued promotion (eval-gated unless forced) or rollback; a refusal fails the job."""
    args, via = job["args"], "slack" if job.get("slack_channel") else "cli"
    try:
        if job["kind"] == "promote":
            model = registry.promote(db, job["team_id"], args["model"], actor=job["created_by"] or "?",
                                     force=bool(args.get("force")), via=via)
            return jobs.finish(db, job["id"], "done", result={"model": model["name"], "live": model["name"]})
        current = registry.rollback(db, job["team_id"], actor=job["created_by"] or "?", via=via)
        live = current["name"] if current else "base"
        return jobs.finish(db, job["id"], "done", result={"model": live, "live": live})
    except RegistryError as err:
        return jobs.finish(db, job["id"], "failed", error=str(err))


def run_admin_jobs(db: Any, ctx: WorkerContext) -> int:
    """Run every queued promote/rollback job now (also called while a training child runs)."""
    count = 0
    while (job := jobs.claim_next(db, jobs.worker_id(), jobs.ADMIN_KINDS)) is not None:
        notifier = ctx.notifier_for(job)
        notifier.finish(run_promote(db, job, ctx, notifier))
        count += 1
    return count


def run_curate_job(db: Any, job: dict[str, Any], ctx: WorkerContext, notifier: Notifier) -> dict[str, Any]:
    """Run a queued curation (`/threadtune curate` queues one) through the callable the entrypoint
    supplied; its progress goes to the job's notifier, which edits the status message (throttled)."""
    assert ctx.curate is not None, "run_one claims curate jobs only for a worker that can curate"
    notifier.start(job)
    latest: dict[str, Any] = {}  # stored by the heartbeat, so `/threadtune jobs` shows it too

    def progress(done: int, total: int, label: str) -> None:
        latest.update(step=done, total=total, phase=label)
        notifier.progress(job, dict(latest))

    with beating(db, job["id"], ctx.heartbeat_s, latest):
        result = ctx.curate(db, job["team_id"], job["args"], progress)
    return jobs.finish(db, job["id"], "done", result=result)


HANDLERS: dict[str, Callable[[Any, dict[str, Any], WorkerContext, Notifier], dict[str, Any]]] = {
    "train": run_train,
    "eval": run_eval,
    "curate": run_curate_job,
    "promote": run_promote,
    "rollback": run_promote,
}
DEFAULT_KINDS = ("promote", "rollback", "curate", "train", "eval")


def run_one(db: Any, ctx: WorkerContext, *, kinds: tuple[str, ...] = DEFAULT_KINDS) -> dict[str, Any] | None:
    """Recover orphaned jobs, then claim and run the oldest queued job; None when the queue is empty.

    A job that fails (bad input, out of memory, disk full …) is marked failed with the reason; the
    worker itself keeps going.
    """
    jobs.recover_stale(db, stale_after_s=ctx.stale_after_s)
    if ctx.curate is None:  # leave curation queued for `threadtune worker`, which can serve the model
        kinds = tuple(k for k in kinds if k != "curate")
    admin = tuple(k for k in kinds if k in jobs.ADMIN_KINDS)
    job = (jobs.claim_next(db, jobs.worker_id(), admin) if admin else None) or jobs.claim_next(
        db, jobs.worker_id(), tuple(k for k in kinds if k not in jobs.ADMIN_KINDS))
    if job is None:
        return None
    notifier = ctx.notifier_for(job)
    try:
        finished = HANDLERS[job["kind"]](db, job, ctx, notifier)
        if job["kind"] != "eval":  # an eval finishes its own message, with the chart attached
            notifier.finish(finished)
    except Exception as err:  # noqa: BLE001 - any failure ends this job, not the worker
        from curation.errors import CurationError
        from serving.errors import ServingError
        from training.sft import failure_reason

        domain = isinstance(err, (TrainingError, CurationError, ServingError))
        finished = jobs.finish(db, job["id"], "failed", error=str(err) if domain else failure_reason(err))
        notifier.finish(finished)
    return finished


def run_forever(db: Any, ctx: WorkerContext, *, poll_s: float = 2.0, once: bool = False,
                kinds: tuple[str, ...] = DEFAULT_KINDS, stop: threading.Event | None = None) -> int:
    """Run jobs until stopped (or, with ``once``, until the queue is empty); returns jobs run."""
    count = 0
    while stop is None or not stop.is_set():
        job = run_one(db, ctx, kinds=kinds)
        if job is not None:
            count += 1
            continue
        if once:
            break
        time.sleep(poll_s)
    return count


def main(argv: list[str] | None = None) -> int:
    """``python -m training.worker --data-dir D [--once]``: a worker without the CLI (tests, services)."""
    import argparse

    from curation.store import connect

    parser = argparse.ArgumentParser(description="threadtune training worker")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--base-model", default="embedded")
    parser.add_argument("--once", action="store_true")
    ns = parser.parse_args(argv)
    db = connect(ns.data_dir / "threadtune.db")
    ctx = WorkerContext(data_dir=ns.data_dir, models_dir=ns.data_dir / "models", base_model=ns.base_model)
    run_forever(db, ctx, once=ns.once)
    return 0


if __name__ == "__main__":
    sys.exit(main())
