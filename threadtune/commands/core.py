"""CLI: init, status, doctor, audit."""

from __future__ import annotations

import json


import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from threadtune.settings import Settings, env_var
from threadtune.shell import console, open_db, settings, user_errors


def register(app: typer.Typer) -> None:
    """Add init, status, doctor and audit to ``app``."""

    @app.command()
    @user_errors
    def init(
        skip_model: bool = typer.Option(
            False, "--skip-model", help="Create the store only; prepare the model later."
        ),
    ) -> None:
        """Create the data dir and the database, and prepare the base model (converted once)."""
        s = settings()
        db = open_db(s, create=True)
        console.print(f"store ready: {s.db_path}")
        db.close()
        if skip_model:
            return
        from serving.models import resolve

        with Progress(
            SpinnerColumn(), TextColumn("[bold]base model[/] {task.description}"),
            TimeElapsedColumn(), console=console, transient=True,
        ) as bar:
            task = bar.add_task("resolving", total=None)
            model = resolve(
                s.base_model, s.models_dir,
                progress=lambda msg: bar.update(task, description=msg),
            )
        console.print(f"base model ready: {model.name} at {model.path}")

    @app.command()
    @user_errors
    def status(
        as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
    ) -> None:
        """Show counts of channels, messages, threads, candidates, datasets, models and jobs."""
        from curation.status import status_counts

        s = settings()
        db = open_db(s)
        counts = status_counts(db, s.team_id)
        if as_json:
            typer.echo(json.dumps(counts, indent=2))
            return
        table = Table(title=f"threadtune status — team {s.team_id}", show_header=False)
        for key in ("channels", "watched_channels", "users", "messages", "threads", "documents",
                    "datasets", "models"):
            table.add_row(key, str(counts[key]))
        table.add_row("candidates", ", ".join(f"{k} {v}" for k, v in counts["candidates"].items()))
        table.add_row("jobs", ", ".join(f"{k} {v}" for k, v in counts["jobs"].items()) or "none")
        table.add_row("live model", counts["live_model"] or "none (base model)")
        for model, fb in counts["feedback"].items():
            table.add_row(f"feedback {model}", f"👍 {fb['up']}  👎 {fb['down']}")
        console.print(table)

    @app.command()
    @user_errors
    def doctor() -> None:
        """Check settings, the Slack token, the model files, CUDA and vLLM; explain what is missing."""
        s = settings()
        rows = doctor_rows(s)
        table = Table(title="threadtune doctor")
        table.add_column("check")
        table.add_column("state")
        table.add_column("detail / fix")
        marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "missing": "[red]missing[/]",
                 "info": "[cyan]info[/]"}
        for check, state, detail in rows:
            table.add_row(check, marks[state], detail)
        console.print(table)

    @app.command()
    @user_errors
    def audit(
        limit: int = typer.Option(50, help="Most recent rows to show."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
    ) -> None:
        """Show the audit log of privileged actions and review decisions."""
        s = settings()
        db = open_db(s)
        rows = list(db.query(
            "select at, actor, action, target, detail, via from audit where team_id = :t "
            "union all select at, actor, 'review:' || action, 'candidate ' || candidate_id, "
            "coalesce(reason, ''), via from reviews where team_id = :t "
            "order by at desc limit :n",
            {"t": s.team_id, "n": limit},
        ))
        if as_json:
            for row in rows:
                typer.echo(json.dumps(row))
            return
        table = Table(title="audit log")
        for col in ("at", "actor", "action", "target", "detail", "via"):
            table.add_column(col)
        for row in rows:
            table.add_row(*(str(row[c] or "") for c in ("at", "actor", "action", "target", "detail", "via")))
        console.print(table)


def doctor_rows(s: Settings) -> list[tuple[str, str, str]]:
    """Rows of (check, state, detail) for `threadtune doctor`; state is ok|warn|missing|info."""
    rows: list[tuple[str, str, str]] = []
    rows.append(("data dir", "ok" if s.data_dir.exists() else "missing",
                 str(s.data_dir) + ("" if s.data_dir.exists() else " — run `threadtune init`")))
    rows.append(("store", "ok" if s.db_path.exists() else "missing", str(s.db_path)))
    rows.append(("team id", "info", s.team_id))
    for field in ("review_channel", "admin_ids", "reviewer_ids", "llm_base_url"):
        value = getattr(s, field)
        if value:
            rows.append((field, "ok", str(value)))
        else:
            hint = {
                "review_channel": "needed to post candidates for review",
                "admin_ids": "nobody can watch channels, train or promote from Slack",
                "reviewer_ids": "only admins can review",
                "llm_base_url": "curation uses the embedded model on loopback",
            }[field]
            rows.append((field, "warn", f"{env_var(field)} not set: {hint}"))
    if s.slack_bot_token:
        rows.append(slack_auth_row(s))
    else:
        rows.append(("slack token", "warn", f"{env_var('slack_bot_token')} not set: the bot cannot run"))
    if not s.slack_signing_secret and not s.slack_app_token:
        rows.append(("slack mode", "warn",
                     f"set {env_var('slack_signing_secret')} (HTTP) or {env_var('slack_app_token')} (Socket Mode)"))
    else:
        rows.append(("slack mode", "ok", "socket mode" if s.slack_app_token else "HTTP (/slack/events)"))
    rows.append(model_row(s))
    rows.append(("cuda", *cuda_state()))
    from serving.vllm import vllm_python

    vllm = vllm_python(s.vllm_python)
    rows.append(("vllm", "ok" if vllm.is_file() else "info",
                 f"environment {vllm.parent.parent}: `auto` serves with vLLM" if vllm.is_file()
                 else f"no environment at {vllm.parent.parent}: `make install-vllm` (else transformers serve)"))
    rows.append(("serving backend", "info", s.serving_backend + (f" → {s.serving_url}" if s.serving_url else "")))
    return rows


def slack_auth_row(s: Settings) -> tuple[str, str, str]:
    """Check the bot token with auth.test."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    try:
        resp = WebClient(token=s.slack_bot_token, base_url=s.slack_api_url, timeout=5).auth_test()
        return ("slack token", "ok", f"team {resp.get('team')} ({resp.get('team_id')}), bot {resp.get('user')}")
    except SlackApiError as err:
        return ("slack token", "missing", f"auth.test failed: {err.response.get('error')}")
    except Exception as err:  # network errors: no Slack reachable
        return ("slack token", "warn", f"auth.test unreachable: {type(err).__name__}: {err}")


def model_row(s: Settings) -> tuple[str, str, str]:
    """Is the base model on disk, converted, and where."""
    from serving.errors import ModelNotFound
    from serving.models import resolve

    try:
        model = resolve(s.base_model, s.models_dir, convert=False)
        return ("base model", "ok", f"{s.base_model}: {model.path}")
    except ModelNotFound as err:
        return ("base model", "missing", str(err))


def cuda_state() -> tuple[str, str]:
    """CUDA availability, as a doctor row state and detail."""
    from serving.hardware import cuda_devices

    devices = cuda_devices()
    if devices:
        return ("ok", f"{len(devices)} × {devices[0]}")
    return ("info", "no CUDA device: CPU training (cpu-small) and the embedded server")
