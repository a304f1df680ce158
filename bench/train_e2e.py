"""Whole training runs through the real worker, timed: the 60-pair acceptance run and the demo's
training step, each with the adopted settings and, with ``--old-vs-new``, with the settings of
before issue #17, one after the other in the same script run (new first, so that its adapter is
ready early). Used by bench/train.py ``--acceptance`` and ``--demo-train``.

Each run has its own store under the data dir (``new/``, ``old/``). ``--lock PATH`` takes an
exclusive ``flock`` on PATH around each timed run (training and its evaluation), so that a machine
shared through a bench lock serialises the runs without one process holding it for the whole
comparison.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from bench.faq_store import acceptance_pairs, load_store

ROOT = Path(__file__).resolve().parent.parent
TEAM = "T0BENCH"
SYSTEM = "You are the DataTalksClub course assistant. Answer briefly and precisely."
ACME = ROOT / "examples" / "acme-workspace"
#: The demo's training step: cpu-small capped at 40 steps (threadtune/demo.py, not --fast).
DEMO_STEPS = 40


@contextmanager
def bench_lock(path: str | None) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (when given) for the duration of the block."""
    if not path:
        yield
        return
    import fcntl

    with open(path, "a") as handle:
        print(f"waiting for the lock {path}", file=sys.stderr, flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
        print(f"holding the lock {path} ({time.strftime('%H:%M:%S')}, load {os.getloadavg()[0]:.2f})",
              file=sys.stderr, flush=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Run the block with ``env`` as this process's environment (the worker's child inherits it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def acceptance_store(data_dir: Path, n_pairs: int, questions: Path) -> Any:
    """A fresh store holding the acceptance pairs as dataset v1, the held-out questions as its eval split."""
    from curation.store import connect, now, transaction

    pairs = acceptance_pairs(n_pairs)
    by_id = {p["id"]: p for p in pairs}
    held_out = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    data_dir.mkdir(parents=True, exist_ok=True)
    if (data_dir / "threadtune.db").exists():
        raise SystemExit(f"{data_dir}: holds a store from an earlier run; pass a new --data-dir")
    db = connect(data_dir / "threadtune.db")
    ids = load_store(db, TEAM, pairs)
    with transaction(db):
        db["datasets"].insert({"id": "faq60", "team_id": TEAM, "version": 1, "name": "v1",
                               "system_prompt": SYSTEM, "n_train": len(pairs), "n_eval": len(held_out),
                               "meta": "{}", "created_by": "bench", "created_at": now()})
        db["dataset_items"].insert_all(
            [{"dataset_id": "faq60", "team_id": TEAM, "candidate_id": ids[p["id"]], "split": "train",
              "kind": "pair", "question": p["question"], "answer": p["answer"]} for p in pairs]
            + [{"dataset_id": "faq60", "team_id": TEAM, "candidate_id": None, "split": "eval", "kind": "variant",
                "question": q["question"], "answer": by_id[q["source_id"]]["answer"]} for q in held_out])
    return db


def demo_store(data_dir: Path) -> tuple[Any, str, str]:
    """The demo's store up to its dataset: the Acme workspace imported, curated without an LLM (the
    deterministic pairs), reviewed by the demo's rule, dataset v1. Returns (db, team, dataset)."""
    from curation import datasets, review
    from curation.candidates import list_candidates
    from curation.channels import set_watched
    from curation.curate import run_curate
    from curation.documents import add_document
    from curation.slack_export import import_export
    from curation.store import connect
    from threadtune.demo import REVIEWER, demo_review
    from threadtune.settings import Settings

    data_dir.mkdir(parents=True, exist_ok=True)
    db = connect(data_dir / "threadtune.db")
    import_export(db, ACME, TEAM)
    for (channel_id,) in db.execute("select id from channels where team_id = ?", [TEAM]).fetchall():
        set_watched(db, TEAM, channel_id, True, by=REVIEWER)
    add_document(db, TEAM, ACME / "handbook.md", actor=REVIEWER)
    run_curate(db, TEAM, None, answered_reaction="white_check_mark")
    for cand in list_candidates(db, TEAM, status="pending"):
        if demo_review(cand) is None:
            review.approve(db, TEAM, cand["id"], REVIEWER, via="cli")
    system_prompt = Settings.model_fields["system_prompt"].default  # the demo's settings keep it
    ds = datasets.create_dataset(db, TEAM, created_by=REVIEWER, system_prompt=system_prompt)
    return db, TEAM, ds["name"]


def train_run(db: Any, data_dir: Path, dataset: str, overrides: dict, env: dict[str, str],
              args: Any) -> dict[str, Any]:
    """One cpu-small training job through the worker (its child process), timed from queueing to
    the registered model."""
    from training.pipeline import plan_train, train_now

    plan = plan_train(db, TEAM, dataset=dataset, preset="cpu-small", overrides=overrides,
                      base_model=args.model or "embedded", models_dir=Path(args.models_dir))
    t0 = time.monotonic()
    with environment(env):
        job = train_now(db, TEAM, plan, data_dir=data_dir, models_dir=Path(args.models_dir), created_by="bench")
    seconds = time.monotonic() - t0
    if job["status"] != "done":
        raise SystemExit(f"training ({dataset}, {overrides}) ended {job['status']}: {job.get('error')}")
    result = json.loads(job["result"]) if isinstance(job["result"], str) else job["result"]
    return {"job": job["id"], "wall_s": round(seconds, 1),
            "config": {k: plan.config.to_dict()[k] for k in ("epochs", "learning_rate", "lora_r", "max_length",
                                                              "per_device_batch_size", "packing", "bf16",
                                                              "frozen_bf16", "answer_only_head",
                                                              "packed_attention", "pad_rows_to",
                                                              "target_modules")},
            **{k: result.get(k) for k in ("steps", "tokens_seen", "first_loss", "last_loss", "train_loss",
                                          "seconds", "precision", "base_weights", "threads")}}


def acceptance_run(label: str, variant_overrides: dict, env: dict[str, str], args: Any,
                   systems: tuple[str, ...] | None, ood: Path | None) -> dict[str, Any]:
    """Train the acceptance pairs with one variant's settings, then score ``systems`` (all when None)."""
    from training.evaluate import markdown_table
    from training.pipeline import evaluate_model

    data_dir = Path(args.data_dir) / label
    db = acceptance_store(data_dir, args.pairs, Path(args.questions))
    overrides = {**variant_overrides, **(json.loads(args.overrides) if args.overrides else {})}
    with bench_lock(args.lock):
        out = {"label": label, "data_dir": str(data_dir), "load_before": round(os.getloadavg()[0], 2),
               "train": train_run(db, data_dir, "v1", overrides, env, args)}
        t0 = time.monotonic()
        report = evaluate_model(db, TEAM, "latest", out_dir=data_dir / "reports", batch_size=args.eval_batch,
                                max_new_tokens=args.max_new_tokens, systems=systems, ood_file=ood)
        out.update({"eval_s": round(time.monotonic() - t0, 1), "load_after": round(os.getloadavg()[0], 2)})
    print(f"## {label}\n" + markdown_table(report), flush=True)
    out.update({"systems": report["systems"], "eval_questions": report["n"], "files": report["files"]})
    print(json.dumps({k: out[k] for k in ("label", "train", "eval_s")}), flush=True)
    return out


def demo_train_run(label: str, variant_overrides: dict, env: dict[str, str], args: Any) -> dict[str, Any]:
    """The demo's training step (40 steps of cpu-small on the demo's dataset) with one variant's settings."""
    data_dir = Path(args.data_dir) / label
    if (data_dir / "threadtune.db").exists():
        raise SystemExit(f"{data_dir}: holds a store from an earlier run; pass a new --data-dir")
    db, _, dataset = demo_store(data_dir)
    with bench_lock(args.lock):
        load = round(os.getloadavg()[0], 2)
        out = {"label": label, "load_before": load,
               "train": train_run(db, data_dir, dataset, {**variant_overrides, "max_steps": DEMO_STEPS}, env, args),
               "load_after": round(os.getloadavg()[0], 2)}
    print(json.dumps(out), flush=True)
    return out


def old_vs_new(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Time ratio (new ÷ old, training wall time through the worker) and final-loss gap."""
    new, old = runs["new"]["train"], runs["old"]["train"]
    out = {"time_ratio": round(new["wall_s"] / old["wall_s"], 3), "goal_time_ratio": 0.5}
    if new.get("last_loss") and old.get("last_loss"):
        out["train_loss_gap"] = round(new["train_loss"] / old["train_loss"] - 1, 4)
        out["last_loss"] = {"new": new["last_loss"], "old": old["last_loss"]}
    return out
