"""CLI: bot, import, backfill, watch, unwatch, channels."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from threadtune.shell import console, open_db, settings, user_errors

CLI_ACTOR = "cli"


def _warm_retrieval(s) -> None:
    """Build the retrieval indexes (curation.retrieval.warm) while the bot already takes events."""
    from curation.retrieval import warm

    db = open_db(s)
    try:
        warm(db)
    finally:
        db.close()


def register(app: typer.Typer) -> None:
    """Add bot, import, backfill, watch, unwatch and channels to ``app``."""

    @app.command()
    @user_errors
    def bot(
        port: Optional[int] = typer.Option(
            None, "--port", help="HTTP port (default THREADTUNE_BOT_PORT, 3000).", show_default=False),
        host: str = typer.Option("0.0.0.0", "--host", help="Interface to listen on."),
    ) -> None:
        """Run the Slack bot: HTTP at POST /slack/events, or Socket Mode when SLACK_APP_TOKEN is set."""
        from bot.app import build_app
        from bot.server import serve_http, serve_socket_mode

        s = settings()
        open_db(s, create=True).close()
        app = build_app(s)
        threading.Thread(target=_warm_retrieval, args=(s,), name="warm-retrieval", daemon=True).start()
        if s.slack_app_token:
            console.print("threadtune bot: Socket Mode")
            serve_socket_mode(app, s.slack_app_token)
        else:
            port = port or s.bot_port
            console.print(f"threadtune bot: HTTP on {host}:{port}, events at /slack/events")
            serve_http(app, s.slack_signing_secret or "", host=host, port=port)

    @app.command("import")
    @user_errors
    def import_(
        path: Path = typer.Argument(..., help="A Slack workspace export: the .zip or its folder."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Import a Slack workspace export (zip or folder); idempotent, all or nothing."""
        from curation.slack_export import import_export

        s = settings()
        db = open_db(s, create=True)
        with Progress(TextColumn("[bold]import[/] {task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                      transient=True, disable=as_json) as bar:
            task = bar.add_task("reading", total=None)

            def progress(done: int, total: int, name: str) -> None:
                bar.update(task, completed=done, total=total, description=name)

            summary = import_export(db, path, s.team_id, keep_dms=s.keep_dms,
                                    max_bytes=s.import_max_mb * 2**20,
                                    answered_reaction=s.answered_reaction, progress=progress)
        if as_json:
            typer.echo(json.dumps(summary.to_dict()))
            return
        table = Table(title=f"imported {path.name} into team {s.team_id}", show_header=False)
        for key in ("channels", "users", "messages", "new_messages", "threads", "deleted", "files"):
            table.add_row(key.replace("_", " "), str(getattr(summary, key)))
        for reason, n in sorted(summary.skipped.items()):
            table.add_row(f"skipped: {reason}", str(n))
        console.print(table)

    @app.command()
    @user_errors
    def backfill(
        channel: str = typer.Option(..., "--channel", help="Channel id (C…) to fetch."),
        days: int = typer.Option(30, "--days", min=1, max=3650, help="How many days back."),
    ) -> None:
        """Fetch a channel's history and threads through the Web API (conversations.history/replies)."""
        from bot.app import web_client
        from bot.backfill import backfill_channel
        from curation.channels import is_watched, set_watched
        from curation.store import audit

        s = settings()
        db = open_db(s, create=True)
        client = web_client(s)
        if not is_watched(db, s.team_id, channel):
            set_watched(db, s.team_id, channel, True, CLI_ACTOR)
            console.print(f"now watching {channel}")
        audit(db, s.team_id, CLI_ACTOR, "backfill", channel, detail={"days": days}, via="cli")
        with Progress(TextColumn("[bold]backfill[/] {task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task(channel, total=None)
            result = backfill_channel(db, client, s.team_id, channel, days=days,
                                      answered_reaction=s.answered_reaction,
                                      progress=lambda r: bar.update(task, description=r.line()))
        console.print(f"backfilled {channel} ({days} days): {result.line()}")

    @app.command()
    @user_errors
    def watch(channel: str = typer.Argument(..., help="Channel id (C…) to collect.")) -> None:
        """Collect a channel (live events and backfill)."""
        _set_watch(channel, True)

    @app.command()
    @user_errors
    def unwatch(channel: str = typer.Argument(..., help="Channel id (C…) to stop collecting.")) -> None:
        """Stop collecting a channel; what was collected stays."""
        _set_watch(channel, False)

    @app.command()
    @user_errors
    def visibility(
        channel: str = typer.Argument(..., help="Channel id (C…)."),
        shared: Optional[bool] = typer.Option(None, "--shared/--unshared", help="A private channel's "
                                              "pairs may answer anywhere (default: only there)."),
        trainable: Optional[bool] = typer.Option(None, "--trainable/--untrainable", help="A private "
                                                 "channel's pairs go into datasets (default: no)."),
    ) -> None:
        """Show or set who may see a channel's pairs: shared (answers anywhere), trainable (datasets)."""
        from bot.channels import visibility_text
        from curation.channels import set_visibility
        from curation.store import audit

        s = settings()
        db = open_db(s)
        row = set_visibility(db, s.team_id, channel, shared=shared, trainable=trainable)
        if shared is not None or trainable is not None:
            audit(db, s.team_id, CLI_ACTOR, "visibility", channel, via="cli",
                  detail={k: v for k, v in (("shared", shared), ("trainable", trainable)) if v is not None})
        text = visibility_text(channel, row["is_private"], row["is_im"], row["shared"], row["trainable"])
        console.print(text.replace(f"<#{channel}>", channel), highlight=False)

    @app.command()
    @user_errors
    def channels(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List the watched channels with message and thread counts."""
        from bot.channels import watched_channels

        s = settings()
        rows = watched_channels(open_db(s), s.team_id)
        if as_json:
            typer.echo(json.dumps(rows))
            return
        table = Table(title=f"watched channels — team {s.team_id}")
        for col in ("id", "name", "messages", "threads", "watched_by"):
            table.add_column(col)
        for r in rows:
            table.add_row(*(str(r[c] or "") for c in ("id", "name", "messages", "threads", "watched_by")))
        console.print(table if rows else "no channel is watched (threadtune watch C…)")


def _set_watch(channel: str, watched: bool) -> None:
    from curation.errors import CurationError
    from curation.channels import set_watched
    from curation.store import audit

    if channel[:1] not in ("C", "G", "D") or not channel.isalnum():
        raise CurationError(f"{channel!r} is not a channel id; give the id (C…), shown in the "
                            "channel's details in Slack")
    s = settings()
    db = open_db(s, create=True)
    set_watched(db, s.team_id, channel, watched, CLI_ACTOR)
    audit(db, s.team_id, CLI_ACTOR, "watch" if watched else "unwatch", channel, via="cli")
    console.print(f"{'watching' if watched else 'stopped watching'} {channel}")
