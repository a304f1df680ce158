"""The ``jobs`` table: queue, claim, heartbeat, finish, cancel, recover and resume.

A job moves ``queued → running → done | failed | cancelled``. A running job whose worker died (its
heartbeat went stale, or its worker process on this host is gone) becomes ``interrupted``, and
:func:`resume` queues it again; a train job then continues from its last checkpoint.
Shared ground: the bot and the CLI queue, list and cancel with these functions, and the worker
claims and finishes with them (bot/ never imports training/).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from typing import Any

from curation.errors import JobError
from curation.store import audit, dumps, loads, now, transaction

KINDS = ("curate", "train", "eval", "promote", "rollback")
#: Quick registry changes, run before (and between the steps of) long jobs.
ADMIN_KINDS = ("promote", "rollback")
ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled")
#: A running job whose heartbeat is older than this is presumed orphaned.
STALE_AFTER_S = 90.0


def worker_id() -> str:
    """``host:pid`` of this process, stored on the jobs it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    for key in ("args", "result", "progress"):
        row[key] = loads(row.get(key), {})
    return row


def enqueue(db: Any, team_id: str, kind: str, args: dict[str, Any], *, created_by: str = "cli",
            slack_channel: str | None = None, slack_ts: str | None = None) -> int:
    """Queue a job; returns its id. ``args`` must already be validated by the caller."""
    if kind not in KINDS:
        raise JobError(f"job kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    with transaction(db):
        job_id = db["jobs"].insert({
            "team_id": team_id, "kind": kind, "status": "queued", "args": dumps(args),
            "progress": dumps({}), "created_by": created_by, "created_at": now(),
            "slack_channel": slack_channel, "slack_ts": slack_ts, "cancel_requested": 0,
        }).last_pk
        audit(db, team_id, created_by, f"job.{kind}", str(job_id), detail=args,
              via="slack" if slack_channel else "cli")
    return int(job_id)


def get(db: Any, job_id: int, team_id: str | None = None) -> dict[str, Any]:
    """One job as a dict with ``args``/``result``/``progress`` decoded; JobError if unknown."""
    rows = list(db.query("select * from jobs where id = ?", [int(job_id)]))
    if not rows or (team_id is not None and rows[0]["team_id"] != team_id):
        raise JobError(f"job {job_id} not found; `threadtune jobs list` (or `/threadtune jobs`) lists them")
    return _decode(rows[0])


def list_jobs(db: Any, team_id: str, *, limit: int = 20, status: str | None = None) -> list[dict[str, Any]]:
    """The newest jobs of a team, newest first."""
    sql, params = "select * from jobs where team_id = ?", [team_id]
    if status:
        sql, params = sql + " and status = ?", [*params, status]
    return [_decode(r) for r in db.query(sql + " order by id desc limit ?", [*params, limit])]


def active(db: Any, team_id: str, kind: str) -> dict[str, Any] | None:
    """The oldest queued or running job of ``kind`` in a team, if any (one curation at a time)."""
    rows = db.query("select * from jobs where team_id = ? and kind = ? and status in ('queued', 'running') "
                    "order by id limit 1", [team_id, kind])
    return next((_decode(r) for r in rows), None)


def claim_next(db: Any, worker: str, kinds: tuple[str, ...] = KINDS) -> dict[str, Any] | None:
    """Atomically take the oldest queued job of ``kinds`` for ``worker`` (marks it running)."""
    marks = ",".join("?" * len(kinds))
    with transaction(db):
        row = db.execute(
            f"select id from jobs where status = 'queued' and kind in ({marks}) order by id limit 1",
            list(kinds)).fetchone()
        if row is None:
            return None
        stamp = now()
        db.execute(
            "update jobs set status = 'running', worker = ?, started_at = ?, heartbeat_at = ?, "
            "error = null, finished_at = null where id = ?", [worker, stamp, stamp, row[0]])
    return get(db, row[0])


def heartbeat(db: Any, job_id: int, *, progress: dict[str, Any] | None = None,
              pid: int | None = None) -> bool:
    """Record that the job is alive (and its progress); returns whether a cancel was requested."""
    sets, params = ["heartbeat_at = ?"], [now()]
    if progress is not None:
        sets.append("progress = ?")
        params.append(dumps(progress))
    if pid is not None:
        sets.append("pid = ?")
        params.append(pid)
    with transaction(db):
        db.execute(f"update jobs set {', '.join(sets)} where id = ?", [*params, job_id])
    row = db.execute("select cancel_requested from jobs where id = ?", [job_id]).fetchone()
    return bool(row and row[0])


def finish(db: Any, job_id: int, status: str, *, result: dict[str, Any] | None = None,
           error: str | None = None) -> dict[str, Any]:
    """End a job as done, failed or cancelled."""
    if status not in FINAL:
        raise JobError(f"cannot finish job {job_id} as {status!r}")
    with transaction(db):
        db.execute(
            "update jobs set status = ?, result = ?, error = ?, finished_at = ?, pid = null "
            "where id = ?", [status, dumps(result or {}), error, now(), job_id])
    return get(db, job_id)


def request_cancel(db: Any, team_id: str, job_id: int, *, actor: str = "cli", via: str = "cli") -> dict[str, Any]:
    """Cancel a job: a queued or interrupted one at once, a running one by flagging it for its worker."""
    job = get(db, job_id, team_id)
    if job["status"] in FINAL:
        raise JobError(f"job {job_id} is already {job['status']}; nothing to cancel")
    with transaction(db):
        if job["status"] == "running":
            db.execute("update jobs set cancel_requested = 1 where id = ?", [job_id])
        else:
            db.execute("update jobs set status = 'cancelled', cancel_requested = 1, finished_at = ? "
                       "where id = ?", [now(), job_id])
        audit(db, team_id, actor, "job.cancel", str(job_id), via=via)
    return get(db, job_id)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_stale(db: Any, *, stale_after_s: float = STALE_AFTER_S,
                  now_: dt.datetime | None = None) -> list[int]:
    """Mark running jobs whose worker died as ``interrupted``; returns their ids.

    A worker on this host is dead when its pid is gone; any worker is presumed dead when its
    heartbeat is older than ``stale_after_s``.
    """
    current = now_ or dt.datetime.now(dt.UTC)
    host = socket.gethostname()
    dead = []
    for job in db.query("select id, worker, heartbeat_at from jobs where status = 'running'"):
        wh, _, wpid = (job["worker"] or "").rpartition(":")
        beat = dt.datetime.fromisoformat(job["heartbeat_at"]) if job["heartbeat_at"] else None
        stale = beat is None or (current - beat).total_seconds() > stale_after_s
        gone = wh == host and wpid.isdigit() and int(wpid) != os.getpid() and not _pid_alive(int(wpid))
        if stale or gone:
            dead.append(job["id"])
    if dead:
        with transaction(db):
            for job_id in dead:
                db.execute(
                    "update jobs set status = 'interrupted', pid = null, error = ? where id = ? "
                    "and status = 'running'",
                    ["its worker stopped; run `threadtune jobs resume " + str(job_id) + "`", job_id])
    return dead


def resume(db: Any, team_id: str, job_id: int, *, actor: str = "cli", via: str = "cli") -> dict[str, Any]:
    """Queue an interrupted or failed job again; a train job continues from its last checkpoint."""
    job = get(db, job_id, team_id)
    if job["status"] not in ("interrupted", "failed", "cancelled"):
        raise JobError(f"job {job_id} is {job['status']}; only interrupted, failed or cancelled "
                       "jobs can be resumed")
    args = {**job["args"], "resume": True}
    with transaction(db):
        db.execute(
            "update jobs set status = 'queued', args = ?, cancel_requested = 0, error = null, "
            "finished_at = null, worker = null where id = ?", [dumps(args), job_id])
        audit(db, team_id, actor, "job.resume", str(job_id), via=via)
    return get(db, job_id)


def set_slack_message(db: Any, job_id: int, channel: str, ts: str) -> None:
    """Remember the Slack status message of a job (the worker updates it in place)."""
    with transaction(db):
        db.execute("update jobs set slack_channel = ?, slack_ts = ? where id = ?", [channel, ts, job_id])
