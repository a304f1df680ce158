"""CLI: train, worker, jobs, eval, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from curation.train_config import PRESET_NAMES
from threadtune.shell import console, open_db, settings, user_errors


def worker_context(s, *, terminal: bool):  # noqa: ANN001, ANN201
    """The worker's context from the settings: Slack or terminal notifiers, and curation with the model."""
    from curation.update_budget import UpdateBudget
    from training.notify import SilentNotifier, SlackNotifier, TerminalNotifier, slack_client
    from training.worker import WorkerContext

    updates = UpdateBudget(s.db_path)  # shared with the bot through the store

    def notifier_for(job: dict):  # noqa: ANN202
        if job.get("slack_channel") and s.slack_bot_token:
            return SlackNotifier(slack_client(s.slack_bot_token, s.slack_api_url), job["slack_channel"],
                                 job.get("slack_ts"), team_id=job.get("team_id") or "", budget=updates)
        return TerminalNotifier(console) if terminal else SilentNotifier()

    def curate(db, team_id: str, args: dict, progress) -> dict:  # noqa: ANN001
        from curation.curate import run_curate
        from threadtune.curation_llm import curation_llm

        llm = curation_llm(s) if args.get("use_llm", True) else None
        report = run_curate(db, team_id, llm, answered_reaction=s.answered_reaction,
                            limit=args.get("limit"), progress=progress)
        return {**report.as_dict(), "summary": report.summary()}

    return WorkerContext(data_dir=s.data_dir, models_dir=s.models_dir, base_model=s.base_model,
                         notifier_for=notifier_for, curate=curate)


def register(app: typer.Typer) -> None:
    """Add train, worker, jobs, eval and models to ``app``."""
    jobs_app = typer.Typer(help="List, cancel and resume jobs.", no_args_is_help=True)
    models_app = typer.Typer(help="The model registry: list, promote, roll back.", no_args_is_help=True)
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(models_app, name="models")

    @app.command()
    @user_errors
    def train(
        dataset: str = typer.Option("latest", "--dataset", "-d", help="Dataset version (v3, 3, a hash, latest)."),
        preset: str = typer.Option("cpu-small", "--preset", "-p", help=", ".join(PRESET_NAMES) + "."),
        overrides: list[str] = typer.Option([], "--set", help="Config override KEY=VALUE (repeatable), "
                                            "e.g. --set epochs=5 --set lora_r=8."),
        now: bool = typer.Option(False, "--now", help="Run in the foreground with a progress bar."),
        help_config: bool = typer.Option(False, "--help-config", help="List the config fields and exit."),
    ) -> None:
        """Queue a LoRA fine-tune of the base model on a dataset version (--now: run it here)."""
        from curation.train_config import TrainConfig, parse_overrides
        from training.pipeline import plan_train, queue_train

        if help_config:
            for name, text in TrainConfig.field_help().items():
                console.print(f"[bold]{name}[/]: {text}", highlight=False)
            return
        s = settings()
        db = open_db(s)
        plan = plan_train(db, s.team_id, dataset=dataset, preset=preset, overrides=parse_overrides(overrides),
                          base_model=s.base_model, models_dir=s.models_dir)
        cfg = plan.config
        summary = (f"{preset} on dataset {plan.dataset['name']} ({plan.describe_rows()}, "
                   f"{cfg.epochs:g} epochs, lr {cfg.learning_rate:.2e})")
        if not now:
            job_id = queue_train(db, s.team_id, plan, created_by="cli")
            console.print(f"queued job {job_id}: {summary}")
            console.print("run `threadtune worker` to start it")
            return
        from training.notify import TerminalNotifier
        from training.pipeline import train_now

        console.print(f"training now: {summary}")
        job = train_now(db, s.team_id, plan, data_dir=s.data_dir, models_dir=s.models_dir,
                        notifier=TerminalNotifier(console))
        if job["status"] != "done":
            raise typer.Exit(1)

    @app.command()
    @user_errors
    def worker(
        once: bool = typer.Option(False, "--once", help="Stop when the queue is empty."),
        poll: float = typer.Option(2.0, "--poll", help="Seconds between queue checks."),
    ) -> None:
        """Run queued curate, train and eval jobs one at a time (training in a child process)."""
        from curation.jobs import recover_stale
        from training.worker import run_forever

        s = settings()
        db = open_db(s)
        for job_id in recover_stale(db):
            console.print(f"job {job_id} was interrupted (its worker died); `threadtune jobs resume {job_id}`")
        console.print(f"worker started on {s.data_dir}; Ctrl-C stops it")
        count = run_forever(db, worker_context(s, terminal=True), poll_s=poll, once=once)
        console.print(f"{count} job(s) run")

    @jobs_app.command("list")
    @user_errors
    def jobs_list(
        status: Optional[str] = typer.Option(None, "--status", help="Only jobs in this status."),
        limit: int = typer.Option(20, "--limit", help="Most jobs to show."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List the newest jobs with their progress or result."""
        from curation.job_text import describe
        from curation.jobs import list_jobs

        s = settings()
        rows = list_jobs(open_db(s), s.team_id, limit=limit, status=status)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        for job in rows:
            console.print(describe(job), highlight=False)
        if not rows:
            console.print("no jobs yet; `threadtune train` queues one")

    @jobs_app.command("show")
    @user_errors
    def jobs_show(job_id: int = typer.Argument(..., help="Job id.")) -> None:
        """Show one job as JSON."""
        from curation.jobs import get

        s = settings()
        typer.echo(json.dumps(get(open_db(s), job_id, s.team_id), indent=2))

    @jobs_app.command("cancel")
    @user_errors
    def jobs_cancel(job_id: int = typer.Argument(..., help="Job id.")) -> None:
        """Cancel a job; a running one is stopped by its worker, which kills the training process."""
        from curation.job_text import describe
        from curation.jobs import request_cancel

        s = settings()
        console.print(describe(request_cancel(open_db(s), s.team_id, job_id)), highlight=False)

    @jobs_app.command("resume")
    @user_errors
    def jobs_resume(job_id: int = typer.Argument(..., help="Job id.")) -> None:
        """Queue an interrupted or failed job again; training continues from its last checkpoint."""
        from curation.job_text import describe
        from curation.jobs import resume

        s = settings()
        console.print(describe(resume(open_db(s), s.team_id, job_id)), highlight=False)

    @app.command("eval")
    @user_errors
    def eval_(
        model: str = typer.Argument("latest", help="Model version (v2, 2) or latest."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d",
                                              help="Score on this dataset's eval split (default: the model's)."),
        eval_file: Optional[Path] = typer.Option(None, "--eval-file",
                                                 help="JSONL of {question, answer} held-out rows."),
        ood_file: Optional[Path] = typer.Option(None, "--ood-file",
                                                help="JSONL of {question} rows the data cannot answer "
                                                "(scores the bot's abstention)."),
        out: Optional[Path] = typer.Option(None, "--out", help="Report folder (default: DATA_DIR/reports)."),
        max_new_tokens: int = typer.Option(128, "--max-new-tokens", help="Longest generated answer."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
        backend: str = typer.Option(
            "transformers", "--backend",
            help="transformers: generate in-process (adapter merged); vllm: score what vLLM serves "
            "(adapter unmerged), on a vLLM spawned from .venv-vllm for the run."),
        server: Optional[str] = typer.Option(
            None, "--server", help="Score through this running vLLM (base URL); loads the adapter there if "
            "it lacks it. Implies --backend vllm.", show_default=False),
    ) -> None:
        """Score base, +retrieval, tuned, +retrieval and the bot's own pipeline; print the threshold curve."""
        from rich.progress import Progress

        from curation.answer_modes import Thresholds
        from training.evaluate import SYSTEMS, calibration_table, markdown_table
        from training.pipeline import evaluate_model

        s = settings()
        db = open_db(s)
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("evaluating", total=len(SYSTEMS))
            report = evaluate_model(
                db, s.team_id, model, out_dir=out or s.data_dir / "reports", dataset=dataset,
                eval_file=eval_file, ood_file=ood_file, max_new_tokens=max_new_tokens,
                thresholds=Thresholds(s.answer_verify_score, s.answer_abstain_score),
                progress=lambda system, n, total: bar.update(task, completed=n, description=system),
                backend=backend, server_url=server, vllm_python=s.vllm_python,
                cpu_kvcache_gib=s.vllm_cpu_kvcache_gib)
        if as_json:
            typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
            return
        console.print(f"[bold]{report['model']}[/] on {report['split']} (n={report['n']}, "
                      f"generated with {report['backend']})")
        console.print(markdown_table(report), highlight=False)
        curve_md = calibration_table(report)
        if curve_md:
            console.print("answer thresholds on these questions (THREADTUNE_ANSWER_VERIFY_SCORE, "
                          "THREADTUNE_ANSWER_ABSTAIN_SCORE):", highlight=False)
            console.print(curve_md, highlight=False, markup=False)
        for path in report["files"].values():
            console.print(f"  {path}")

    @models_app.command("list")
    @user_errors
    def models_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List model versions with status, dataset, base model and eval score."""
        from curation.model_versions import GATE_METRIC, latest_score, list_models

        s = settings()
        rows = list_models(open_db(s), s.team_id)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table("version", "status", "dataset", "parent", f"{GATE_METRIC} (latest eval)", "adapter")
        for m in rows:
            table.add_row(m["name"], m["status"], (m["dataset_id"] or "")[:12], m["parent"] or "—",
                          latest_score(m) or "—", m["adapter_path"] or "")
        console.print(table if rows else "no models yet; `threadtune train` makes one")

    @models_app.command("promote")
    @user_errors
    def models_promote(
        version: str = typer.Argument(..., help="Model version to make live (v2, 2, latest)."),
        force: bool = typer.Option(False, "--force", help="Promote even when it scores below the live model."),
    ) -> None:
        """Make a model live, if its eval is not worse than the live one (recorded in the audit log)."""
        from training.registry import promote

        s = settings()
        model = promote(open_db(s), s.team_id, version, actor="cli", force=force)
        console.print(f"{model['name']} is live; the server reloads it (`threadtune serve` watches the store)")

    @models_app.command("rollback")
    @user_errors
    def models_rollback() -> None:
        """Retire the live model and bring back the previous one (or the base model)."""
        from training.registry import rollback

        s = settings()
        current = rollback(open_db(s), s.team_id, actor="cli")
        console.print(f"live model is now {current['name'] if current else 'the base model'}")
