"""CLI: curate, add-doc, review (list/show/approve/reject/edit), dataset (create/list/export/import)."""

from __future__ import annotations

import getpass
import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from threadtune.shell import console, err_console, open_db, settings, user_errors

review_app = typer.Typer(help="Review candidate pairs from the terminal (as in Slack).",
                         no_args_is_help=True)
dataset_app = typer.Typer(help="Freeze approved pairs into versioned datasets; export and import JSONL.",
                          no_args_is_help=True)

JSON_KEYS = ("id", "status", "question", "answer", "scores", "sources", "origin", "variant_of",
             "scrub_count", "reject_reason", "stale", "stale_reason", "prompt_version", "approvals")

AS_OPTION = typer.Option(None, "--as", help="Act as this Slack user id (U…), known from the users "
                         "table or the role settings; recorded as 'operator cli:<login> acting as U…' "
                         "(default: cli:<login>).", show_default=False)
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def _actor(name: str | None) -> str:
    if name:
        return name
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 (no login name in some containers)
        return "cli"


def _identity(db, s, name: str | None) -> tuple[str, str]:
    """``(actor, operator)``: who acts (``--as`` or the login) and who typed the command.

    ``--as`` takes only a known user id: one in the users table of the team, or in the role
    settings. Anything else (a typo, a made-up id, text with markup) is refused."""
    from bot.roles import in_team
    from curation.errors import CurationError

    operator = _actor(None)
    if name is None:
        return operator, operator
    known = set(in_team(s.admin_ids, s.team_id, s.team_id) + in_team(s.reviewer_ids, s.team_id, s.team_id))
    if not _USER_ID.match(name) or not (name in known or db.execute(
            "select 1 from users where team_id = ? and id = ? and coalesce(deleted, 0) = 0",
            [s.team_id, name]).fetchone()):
        raise CurationError(f"--as {name[:40]!r}: not a known user of team {s.team_id}; give a Slack "
                            "user id (U…) from the users table (`threadtune import` or the bot fill it) "
                            "or from THREADTUNE_ADMIN_IDS / THREADTUNE_REVIEWER_IDS")
    return name, operator


def _public(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c.get(k) for k in JSON_KEYS}


def _persona(db, s) -> str | None:
    row = db.execute("select system_prompt from workspaces where team_id = ?", [s.team_id]).fetchone()
    return (row[0] if row and row[0] else None) or s.system_prompt or None


def register(app: typer.Typer) -> None:
    """Add curate, add-doc and the review and dataset groups to ``app``."""

    @app.command()
    @user_errors
    def curate(
        no_llm: bool = typer.Option(False, "--no-llm", help="Deterministic thread pairs only; no model."),
        limit: Optional[int] = typer.Option(None, "--limit", help="Read at most N new sources."),
        concurrency: Optional[int] = typer.Option(
            None, "--concurrency", min=1,
            help="Sources in flight (default: 4 on vLLM or an endpoint, 1 on transformers serve).",
            show_default=False),
        as_json: bool = typer.Option(False, "--json", help="Print the run's counts as JSON."),
    ) -> None:
        """Turn new threads, announcements and documents into candidate pairs for review.

        With no THREADTUNE_LLM_BASE_URL the embedded model is served on loopback for the run."""
        from curation.curate import run_curate
        from threadtune.curation_llm import curation_llm

        s = settings()
        db = open_db(s)
        with Progress(TextColumn("[bold]curate[/] {task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                      transient=True, disable=as_json) as bar:
            task = bar.add_task("finding new sources", total=None)

            def progress(done: int, total: int, label: str) -> None:
                bar.update(task, completed=done, total=total, description=label[:50])

            report = run_curate(db, s.team_id, None if no_llm else curation_llm(s),
                                answered_reaction=s.answered_reaction, limit=limit,
                                concurrency=concurrency, progress=progress)
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            console.print(report.summary())
            for error in report.llm_errors[:5]:
                err_console.print(f"[yellow]LLM:[/] {error}", highlight=False)

    @app.command("add-doc")
    @user_errors
    def add_doc(
        file: Path = typer.Argument(..., help="A Markdown (.md) or plain-text (.txt) file."),
        title: Optional[str] = typer.Option(None, "--title", help="Title (default: the file name)."),
    ) -> None:
        """Add a Markdown or text document as a source for the next `threadtune curate`."""
        from curation.documents import add_document

        s = settings()
        row = add_document(open_db(s), s.team_id, file, actor=_actor(None), title=title)
        verb = "added" if row["created"] else "already present:"
        console.print(f"{verb} document {row['id']} ({row['title']}, {len(row['text']):,} chars); "
                      "run `threadtune curate` to extract pairs")

    # --- review ---------------------------------------------------------------------------
    @review_app.command("list")
    @user_errors
    def review_list(
        status: Optional[str] = typer.Option(None, "--status", help="pending, approved, rejected, "
                                             "auto_rejected or variant."),
        limit: Optional[int] = typer.Option(None, "--limit", help="Show at most N."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON: id, status, question, "
                                     "answer, scores and sources of each."),
    ) -> None:
        """List candidate pairs, optionally of one status."""
        from curation.candidates import list_candidates
        from curation.errors import CurationError
        from curation.schema import CANDIDATE_STATUSES

        if status and status not in CANDIDATE_STATUSES:
            raise CurationError(f"--status {status!r}: use one of {', '.join(CANDIDATE_STATUSES)}")
        s = settings()
        rows = list_candidates(open_db(s), s.team_id, status=status, limit=limit)
        if as_json:
            typer.echo(json.dumps([_public(r) for r in rows], indent=2, ensure_ascii=False))
            return
        table = Table(title=f"candidates — team {s.team_id}" + (f" ({status})" if status else ""))
        for col in ("id", "status", "question", "answer", "note"):
            table.add_column(col, overflow="fold")
        for r in rows:
            note = r["reject_reason"] or (f"variant of {r['variant_of']}" if r["variant_of"] else "")
            note = ("STALE " if r["stale"] else "") + (note or "")
            table.add_row(str(r["id"]), r["status"], r["question"][:80], r["answer"][:80], note[:60])
        console.print(table)

    @review_app.command("show")
    @user_errors
    def review_show(
        candidate_id: int = typer.Argument(..., help="Candidate id."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Show one candidate: the pair, scores, sources and its review history."""
        from curation.candidates import get_candidate
        from curation.review import history
        from curation.visibility import describe

        s = settings()
        db = open_db(s)
        c = get_candidate(db, s.team_id, candidate_id)
        hist = history(db, s.team_id, candidate_id)
        seen = describe(db, s.team_id, candidate_id)
        if as_json:
            typer.echo(json.dumps({**_public(c), "visibility": seen, "history": hist}, indent=2,
                                  ensure_ascii=False))
            return
        console.print(f"[bold]#{c['id']}[/] {c['status']}" + (" (stale)" if c["stale"] else "")
                      + f" — origin {c['origin']}, prompt {c['prompt_version']}, visible: "
                      + (seen["scope"] + (" in " + ", ".join(seen["channels"]) if seen["channels"] else "")))
        console.print(f"[bold]Q:[/] {c['question']}", highlight=False)
        console.print(f"[bold]A:[/] {c['answer']}", highlight=False)
        for name, sc in c["scores"].items():
            if isinstance(sc, dict):
                console.print(f"  {name}: {sc.get('score')} {'ok' if sc.get('passed') else 'FAIL'} — "
                              f"{sc.get('reason')}", highlight=False)
        for src in c["sources"]:
            console.print(f"  source: {src['permalink'] or src['kind']} "
                          f"{src['channel_id'] or ''} {src['ts'] or src['document_id'] or ''}")
        for h in hist:
            console.print(f"  {h['at']} {h['actor']} {h['action']} via {h['via']}"
                          + (f": {h['reason']}" if h["reason"] else ""), highlight=False)

    def tell_askers(s, db, candidate_id: int) -> None:  # noqa: ANN001
        """An approved answer to open questions: their askers are told in Slack, as on approval there."""
        from curation.escalations import to_notify

        waiting = to_notify(db, s.team_id, candidate_id)
        if not waiting:
            return
        if not s.slack_bot_token:
            err_console.print(f"#{candidate_id} answers {len(waiting)} open question(s); set SLACK_BOT_TOKEN "
                              "to tell the askers in Slack", style="yellow", highlight=False)
            return
        from bot.escalation import notify_answered
        from training.notify import slack_client

        told = notify_answered(db, slack_client(s.slack_bot_token, s.slack_api_url), s.team_id, candidate_id)
        console.print(f"#{candidate_id}: told {told} of {len(waiting)} asker(s) in Slack", highlight=False)

    @review_app.command("approve")
    @user_errors
    def review_approve(
        candidate_ids: list[int] = typer.Argument(..., help="Candidate id(s)."),
        actor: Optional[str] = AS_OPTION,
    ) -> None:
        """Approve candidate pairs (counts toward THREADTUNE_REVIEW_QUORUM)."""
        from curation.review import approve

        s = settings()
        db = open_db(s)
        who, operator = _identity(db, s, actor)
        for cid in candidate_ids:
            d = approve(db, s.team_id, cid, who, via="cli", quorum=s.review_quorum, operator=operator)
            console.print(f"#{cid}: {d.message}", highlight=False)
            if d.changed and d.candidate["status"] == "approved":
                tell_askers(s, db, cid)

    @review_app.command("reject")
    @user_errors
    def review_reject(
        candidate_id: int = typer.Argument(..., help="Candidate id."),
        reason: str = typer.Option(..., "--reason", help="Why (shown to reviewers, kept in the audit log)."),
        actor: Optional[str] = AS_OPTION,
    ) -> None:
        """Reject a candidate pair with a reason."""
        from curation.review import reject

        s = settings()
        db = open_db(s)
        who, operator = _identity(db, s, actor)
        d = reject(db, s.team_id, candidate_id, who, reason, via="cli", operator=operator)
        console.print(f"#{candidate_id}: {d.message}", highlight=False)

    @review_app.command("edit")
    @user_errors
    def review_edit(
        candidate_id: int = typer.Argument(..., help="Candidate id."),
        question: Optional[str] = typer.Option(None, "--question", help="New question text."),
        answer: Optional[str] = typer.Option(None, "--answer", help="New answer text."),
        actor: Optional[str] = AS_OPTION,
    ) -> None:
        """Edit a candidate's question and/or answer; it then needs approval again."""
        from curation.errors import CurationError
        from curation.review import edit

        if question is None and answer is None:
            raise CurationError("give --question and/or --answer")
        s = settings()
        db = open_db(s)
        who, operator = _identity(db, s, actor)
        d = edit(db, s.team_id, candidate_id, who, question=question, answer=answer, via="cli",
                 operator=operator)
        console.print(f"#{candidate_id}: {d.message}", highlight=False)

    # --- datasets -------------------------------------------------------------------------
    @dataset_app.command("create")
    @user_errors
    def dataset_create(
        system_prompt: Optional[str] = typer.Option(
            None, "--system-prompt", help="Persona prompt for every example (default: the workspace's "
            "or THREADTUNE_SYSTEM_PROMPT)."),
        no_system_prompt: bool = typer.Option(False, "--no-system-prompt", help="No system prompt."),
        as_json: bool = typer.Option(False, "--json", help="Print the version as JSON."),
    ) -> None:
        """Freeze the approved pairs into a new immutable dataset version (id = content hash)."""
        from curation.datasets import create_dataset

        s = settings()
        db = open_db(s)
        prompt = None if no_system_prompt else (system_prompt or _persona(db, s))
        ds = create_dataset(db, s.team_id, created_by=_actor(None), system_prompt=prompt)
        if as_json:
            typer.echo(json.dumps(ds, indent=2))
            return
        verb = "created" if ds["created"] else "unchanged, same content as"
        console.print(f"{verb} dataset {ds['name']} ({ds['id'][:12]}): {ds['n_train']} train, "
                      f"{ds['n_eval']} eval")

    @dataset_app.command("list")
    @user_errors
    def dataset_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List dataset versions."""
        from curation.datasets import list_datasets

        s = settings()
        rows = list_datasets(open_db(s), s.team_id)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        table = Table(title=f"datasets — team {s.team_id}")
        for col in ("name", "id", "train", "eval", "created", "by"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], r["id"][:12], str(r["n_train"]), str(r["n_eval"]),
                          r["created_at"], r["created_by"] or "")
        console.print(table)

    @dataset_app.command("export")
    @user_errors
    def dataset_export(
        version: str = typer.Argument(..., help="Version: v1, 1, or an id prefix."),
        fmt: str = typer.Option("openai", "--format", help="openai (messages), sharegpt or alpaca."),
        output: Optional[Path] = typer.Option(None, "-o", "--output", help="File (default: stdout)."),
        split: str = typer.Option("train", "--split", help="train, eval or all."),
    ) -> None:
        """Write a dataset version as JSONL."""
        from curation.dataset_lookup import resolve_dataset
        from curation.datasets import export_rows, record_export, write_jsonl

        s = settings()
        db = open_db(s)
        rows = export_rows(db, s.team_id, version, fmt, split=split)
        if output is None:
            for row in rows:
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        n = write_jsonl(rows, output)
        record_export(db, s.team_id, resolve_dataset(db, s.team_id, version)["id"], output)
        console.print(f"wrote {n} {split} examples ({fmt}) to {output}")

    @dataset_app.command("import")
    @user_errors
    def dataset_import(
        file: Path = typer.Argument(..., help="JSONL of {question, answer} or {messages} rows."),
        approved: bool = typer.Option(False, "--approved", help="Admins: take already-curated pairs "
                                      "straight to approved (recorded in the audit log)."),
        actor: Optional[str] = AS_OPTION,
    ) -> None:
        """Import pairs from JSONL as candidates for review; bad lines are reported, good ones kept."""
        from curation.datasets import import_jsonl

        from bot.roles import in_team
        from curation.errors import CurationError

        s = settings()
        db = open_db(s)
        who, operator = _identity(db, s, actor)
        if approved and actor is not None and who not in in_team(s.admin_ids, s.team_id, s.team_id):
            raise CurationError(f"--approved takes pairs straight to approved, which only admins may "
                                f"do: {who} is not an admin of team {s.team_id} (THREADTUNE_ADMIN_IDS)")
        report = import_jsonl(db, s.team_id, file, approved=approved, actor=who, operator=operator)
        console.print(f"{file.name}: {report.added} added ({report.approved} approved, "
                      f"{report.variants} variants, {report.auto_rejected} auto-rejected), "
                      f"{report.duplicates} already present, {len(report.errors)} bad lines",
                      soft_wrap=True, highlight=False)
        for line, message in report.errors[:20]:
            err_console.print(f"  line {line}: {message}", highlight=False)
        if len(report.errors) > 20:
            err_console.print(f"  … {len(report.errors) - 20} more")

    app.add_typer(review_app, name="review")
    app.add_typer(dataset_app, name="dataset")
