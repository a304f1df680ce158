"""`/threadtune train|cancel|jobs|eval|models|promote|rollback`: the bot queues, the worker runs.

The bot never imports training/: it writes job rows into the store and reads jobs and models
back. Each queued job gets one status message in the channel, which the worker edits in place
(``chat.update``, at most every 10 s) and ends with the result. Promotion and rollback are queued
too (kinds ``promote``/``rollback``); the worker applies them between training steps, eval-gated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from slack_sdk import WebClient

from bot.context import BotContext
from bot.roles import has_role, refusal
from bot.slash import SlashRequest
from curation.job_text import describe
from curation.store import audit, dumps, loads, now, transaction

#: Kept in step with training.config.PRESET_NAMES (bot/ never imports training/).
PRESETS = ("cpu-small", "gpu-lora", "gpu-qlora")
FINAL = ("done", "failed", "cancelled")


def _admin(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object],
           action: str) -> bool:
    if has_role(ctx.settings, req.user_id, "admin", client):
        return True
    respond(text=refusal(ctx.settings, "admin", action), response_type="ephemeral")
    return False


def _queue(ctx: BotContext, req: SlashRequest, client: WebClient, kind: str, args: dict[str, Any],
           label: str) -> int:
    """Insert a job row, post its status message, and remember the message for the worker."""
    db = ctx.db()
    with transaction(db):
        job_id = int(db["jobs"].insert({
            "team_id": req.team_id, "kind": kind, "status": "queued", "args": dumps(args),
            "progress": dumps({}), "created_by": req.user_id, "created_at": now(), "cancel_requested": 0,
            "slack_channel": req.channel_id,
        }).last_pk)
        audit(db, req.team_id, req.user_id, f"job.{kind}", str(job_id), detail=args, via="slack")
    posted = client.chat_postMessage(channel=req.channel_id,
                                     text=f":hourglass_flowing_sand: #{job_id} {label}: queued by <@{req.user_id}>")
    with transaction(db):
        db.execute("update jobs set slack_ts = ? where id = ?", [posted["ts"], job_id])
    return job_id


def _dataset_exists(db: Any, team_id: str, spec: str) -> str | None:
    """The dataset name for ``spec`` (v3, 3, a hash, latest), or None."""
    if spec == "latest":
        row = db.execute("select name from datasets where team_id = ? order by version desc limit 1",
                         [team_id]).fetchone()
    else:
        digits = spec[1:] if spec[:1] in "vV" else spec
        row = db.execute("select name from datasets where team_id = ? and (id = ? or name = ? or version = ?)",
                         [team_id, spec, spec, int(digits) if digits.isdigit() else -1]).fetchone()
    return row[0] if row else None


def parse_train_args(words: list[str]) -> tuple[str, str, dict[str, Any], list[str]]:
    """``[DATASET] [--preset P | preset=P] [KEY=VALUE …]`` → dataset, preset, overrides, problems."""
    dataset, preset, overrides, problems = "latest", "cpu-small", {}, []
    it = iter(words)
    for word in it:
        if word in ("--preset", "-p"):
            preset = next(it, "")
        elif "=" in word:
            key, _, value = word.partition("=")
            key = key.strip().lstrip("-").replace("-", "_")
            if key == "preset":
                preset = value
            else:
                try:
                    overrides[key] = yaml.safe_load(value) if value else None
                except yaml.YAMLError:
                    problems.append(f"`{word}` has an unreadable value")
        else:
            dataset = word
    if preset not in PRESETS:
        problems.append(f"preset `{preset}` is unknown; use one of {', '.join(PRESETS)}")
    return dataset, preset, overrides, problems


def train(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Fine-tune on a dataset version (admins): `train [v3] [--preset cpu-small] [epochs=5 …]`."""
    if not _admin(ctx, req, client, respond, "start training"):
        return
    dataset, preset, overrides, problems = parse_train_args(req.args)
    name = _dataset_exists(ctx.db(), req.team_id, dataset)
    if name is None:
        problems.append(f"dataset `{dataset}` not found; `/threadtune dataset create` makes one")
    if problems:
        respond(":warning: " + "; ".join(problems))
        return
    args = {"dataset": name, "preset": preset, "overrides": overrides, "base_model": ctx.settings.base_model}
    job_id = _queue(ctx, req, client, "train", args, f"train {preset} on {name}")
    respond(f"Queued training job #{job_id} ({preset} on {name}). Its status message updates as it runs; "
            f"`/threadtune cancel {job_id}` stops it.")


def cancel(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Cancel a queued or running job (admins): `cancel N`."""
    if not _admin(ctx, req, client, respond, "cancel jobs"):
        return
    if not req.args or not req.args[0].lstrip("#").isdigit():
        respond("Usage: `/threadtune cancel JOB_ID` (see `/threadtune jobs`)")
        return
    job_id = int(req.args[0].lstrip("#"))
    db = ctx.db()
    row = db.execute("select status from jobs where id = ? and team_id = ?", [job_id, req.team_id]).fetchone()
    if row is None:
        respond(f":warning: job #{job_id} not found; `/threadtune jobs` lists them")
        return
    if row[0] in FINAL:
        respond(f"Job #{job_id} is already {row[0]}.")
        return
    with transaction(db):
        if row[0] == "running":
            db.execute("update jobs set cancel_requested = 1 where id = ?", [job_id])
        else:
            db.execute("update jobs set status = 'cancelled', cancel_requested = 1, finished_at = ? where id = ?",
                       [now(), job_id])
        audit(db, req.team_id, req.user_id, "job.cancel", str(job_id), via="slack")
    respond(f"Cancelling job #{job_id}" + (": its worker stops the training process." if row[0] == "running" else "."))


def jobs(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """List the newest jobs with their progress or result."""
    rows = list(ctx.db().query("select * from jobs where team_id = ? order by id desc limit 10", [req.team_id]))
    respond("\n".join(describe(j) for j in rows) if rows else "No jobs yet; `/threadtune train` queues one.")


def eval_(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Score a model against the base model and prompting (admins): `eval [v2|latest]`."""
    if not _admin(ctx, req, client, respond, "run evaluations"):
        return
    model = req.args[0] if req.args else "latest"
    if _model_row(ctx.db(), req.team_id, model) is None:
        respond(f":warning: model `{model}` not found; `/threadtune models` lists them")
        return
    job_id = _queue(ctx, req, client, "eval", {"model": model}, f"eval {model}")
    respond(f"Queued evaluation job #{job_id}; the table and chart arrive in its thread.")


def _model_row(db: Any, team_id: str, spec: str) -> dict[str, Any] | None:
    if spec == "latest":
        rows = db.query("select * from models where team_id = ? order by version desc limit 1", [team_id])
    else:
        digits = spec[1:] if spec[:1] in "vV" else spec
        rows = db.query("select * from models where team_id = ? and version = ?",
                        [team_id, int(digits) if digits.isdigit() else -1])
    return next(iter(rows), None)


def models(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """List model versions: status, dataset, eval score."""
    rows = list(ctx.db().query("select * from models where team_id = ? order by version desc limit 15",
                               [req.team_id]))
    if not rows:
        respond("No models yet; `/threadtune train` makes one. The base model is serving.")
        return
    lines = []
    for m in rows:
        evals = loads(m["metrics"], {}).get("evals", {})
        scores = [e.get("systems", {}).get("tuned", {}).get("token_f1") for e in evals.values()]
        score = next((f"token F1 {s:.3f}" for s in scores if s is not None), "not evaluated")
        lines.append(f"`{m['name']}` *{m['status']}* · dataset {str(m['dataset_id'])[:10]} · {score}")
    respond("\n".join(lines))


def promote(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Make a model live if its eval is not worse than the live one (admins): `promote v3 [--force]`."""
    if not _admin(ctx, req, client, respond, "promote models"):
        return
    names = [a for a in req.args if a != "--force"]
    if not names:
        respond("Usage: `/threadtune promote VERSION [--force]`")
        return
    if _model_row(ctx.db(), req.team_id, names[0]) is None:
        respond(f":warning: model `{names[0]}` not found; `/threadtune models` lists them")
        return
    force = "--force" in req.args
    job_id = _queue(ctx, req, client, "promote", {"model": names[0], "force": force}, f"promote {names[0]}")
    respond(f"Promotion of {names[0]} queued as job #{job_id}; the outcome is posted in the channel.")


def rollback(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Bring back the previously live model, or the base model (admins)."""
    if not _admin(ctx, req, client, respond, "roll back models"):
        return
    live = ctx.db().execute("select name from models where team_id = ? and status = 'live'",
                            [req.team_id]).fetchone()
    if live is None:
        respond("No live model: the base model is already serving.")
        return
    job_id = _queue(ctx, req, client, "rollback", {"from": live[0]}, f"roll back {live[0]}")
    respond(f"Rollback of {live[0]} queued as job #{job_id}.")


#: /threadtune <name> handlers of this module.
SUBCOMMANDS: dict = {
    "train": train, "cancel": cancel, "jobs": jobs, "eval": eval_, "models": models,
    "promote": promote, "rollback": rollback,
}


def register(app, ctx: BotContext) -> None:  # noqa: ANN001
    """Nothing beyond the slash subcommands: the worker owns the status messages."""

