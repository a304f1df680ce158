"""`/threadtune train|curate|cancel|jobs|eval|models|promote|rollback`: the bot queues, the worker runs.

The bot never imports training/: it queues and reads jobs and models through the shared ground in
curation/ (``curation.jobs``, ``curation.model_versions``, ``curation.dataset_lookup``,
``curation.train_config``), checking a request there before it is queued. Each queued job gets one
status message in the channel, which the worker edits in place (``chat.update``, at most every
10 s) and ends with the result. Curation runs in the worker too, so the bot process never starts a
model server. Promotion and rollback are queued as well (kinds ``promote``/``rollback``); the worker
applies them between training steps, eval-gated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.context import BotContext
from bot.roles import has_role, refusal
from bot.slash import SlashRequest
from curation import jobs as queue
from curation.dataset_lookup import resolve_dataset
from curation.errors import CurationError
from curation.job_text import describe
from curation.model_versions import get_model, latest_score, list_models, live_model
from curation.train_config import check_overrides, split_train_words


def _allowed(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object],
             role: str, action: str) -> bool:
    if has_role(ctx.settings, req.user_id, role, client, team_id=req.team_id):
        return True
    respond(text=refusal(ctx.settings, role, action, team_id=req.team_id), response_type="ephemeral")
    return False


def _admin(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object],
           action: str) -> bool:
    return _allowed(ctx, req, client, respond, "admin", action)


def _queue(ctx: BotContext, req: SlashRequest, client: WebClient, kind: str, args: dict[str, Any],
           label: str) -> int:
    """Post the job's status message, then queue the job with it (the worker edits it in place).
    Where the bot cannot post (``not_in_channel``), nothing is queued and the user is told why."""
    try:
        posted = client.chat_postMessage(channel=req.channel_id,
                                         text=f":hourglass_flowing_sand: {label}: queued by <@{req.user_id}>")
    except SlackApiError as err:
        raise CurationError(f"I cannot post the job's status message here ({err.response.get('error')}); "
                            "invite me with `/invite @threadtune` or run the command in a channel I am "
                            "in. Nothing was queued.") from None
    return queue.enqueue(ctx.db(), req.team_id, kind, args, created_by=req.user_id,
                         slack_channel=posted["channel"], slack_ts=posted["ts"])


def train(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Fine-tune on a dataset version (admins): `train [v3] [--preset cpu-small] [epochs=5 …]`."""
    if not _admin(ctx, req, client, respond, "start training"):
        return
    problems, name, overrides = [], None, {}
    dataset, preset, pairs = split_train_words(req.args)
    try:
        overrides = check_overrides(preset, pairs)
    except CurationError as err:  # every config problem, with the valid keys
        problems.append(str(err))
    try:
        name = resolve_dataset(ctx.db(), req.team_id, dataset)["name"]
    except CurationError as err:  # names the known versions, or how to make the first
        problems.append(str(err))
    if problems:
        respond(":warning: " + "; ".join(problems))
        return
    args = {"dataset": name, "preset": preset, "overrides": overrides, "base_model": ctx.settings.base_model}
    job_id = _queue(ctx, req, client, "train", args, f"train {preset} on {name}")
    respond(f"Queued training job #{job_id} ({preset} on {name}). Its status message updates as it runs; "
            f"`/threadtune cancel {job_id}` stops it.")


def curate(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Turn new threads and documents into candidate pairs (reviewers): `curate [--no-llm]`.

    The worker runs it (and serves the model for it): one status message shows its progress.
    """
    if not _allowed(ctx, req, client, respond, "reviewer", "run curation"):
        return
    running = queue.active(ctx.db(), req.team_id, "curate")
    if running is not None:
        respond(f":hourglass: Curation is already {running['status']} as job #{running['id']}; "
                "its status message updates as it runs.")
        return
    use_llm = "--no-llm" not in req.args
    job_id = _queue(ctx, req, client, "curate", {"use_llm": use_llm}, "curate" + ("" if use_llm else " --no-llm"))
    respond(f"Queued curation as job #{job_id}; its status message updates as the worker runs it, and "
            "`/threadtune review` posts the new candidates.")


def cancel(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Cancel a queued or running job (admins): `cancel N`."""
    if not _admin(ctx, req, client, respond, "cancel jobs"):
        return
    if not req.args or not req.args[0].lstrip("#").isdigit():
        respond("Usage: `/threadtune cancel JOB_ID` (see `/threadtune jobs`)")
        return
    job_id = int(req.args[0].lstrip("#"))
    try:
        job = queue.request_cancel(ctx.db(), req.team_id, job_id, actor=req.user_id, via="slack")
    except CurationError as err:
        respond(f":warning: {err}")
        return
    running = job["status"] == "running"
    respond(f"Cancelling job #{job_id}" + (": its worker stops it." if running else "."))


def jobs(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """List the newest jobs with their progress or result."""
    rows = queue.list_jobs(ctx.db(), req.team_id, limit=10)
    respond("\n".join(describe(j) for j in rows) if rows else "No jobs yet; `/threadtune train` queues one.")


def _model_known(ctx: BotContext, req: SlashRequest, spec: str, respond: Callable[..., object]) -> bool:
    try:
        get_model(ctx.db(), req.team_id, spec)
    except CurationError as err:
        respond(f":warning: {err}; `/threadtune models` lists them")
        return False
    return True


def eval_(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Score a model against the base model and prompting (admins): `eval [v2|latest]`."""
    if not _admin(ctx, req, client, respond, "run evaluations"):
        return
    model = req.args[0] if req.args else "latest"
    if not _model_known(ctx, req, model, respond):
        return
    job_id = _queue(ctx, req, client, "eval", {"model": model}, f"eval {model}")
    respond(f"Queued evaluation job #{job_id}; the table and chart arrive in its thread.")


def models(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """List model versions: status, dataset, eval score."""
    rows = list_models(ctx.db(), req.team_id)[:15]
    if not rows:
        respond("No models yet; `/threadtune train` makes one. The base model is serving.")
        return
    lines = []
    for m in rows:
        score = latest_score(m)
        score = f"token F1 {score}" if score else "not evaluated"
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
    if not _model_known(ctx, req, names[0], respond):
        return
    force = "--force" in req.args
    job_id = _queue(ctx, req, client, "promote", {"model": names[0], "force": force}, f"promote {names[0]}")
    respond(f"Promotion of {names[0]} queued as job #{job_id}; the outcome is posted in the channel.")


def rollback(ctx: BotContext, req: SlashRequest, client: WebClient, respond: Callable[..., object]) -> None:
    """Bring back the previously live model, or the base model (admins)."""
    if not _admin(ctx, req, client, respond, "roll back models"):
        return
    live = live_model(ctx.db(), req.team_id)
    if live is None:
        respond("No live model: the base model is already serving.")
        return
    job_id = _queue(ctx, req, client, "rollback", {"from": live["name"]}, f"roll back {live['name']}")
    respond(f"Rollback of {live['name']} queued as job #{job_id}.")


#: /threadtune <name> handlers of this module.
SUBCOMMANDS: dict = {
    "train": train, "curate": curate, "cancel": cancel, "jobs": jobs, "eval": eval_, "models": models,
    "promote": promote, "rollback": rollback,
}


def register(app, ctx: BotContext) -> None:  # noqa: ANN001
    """Nothing beyond the slash subcommands: the worker owns the status messages."""

