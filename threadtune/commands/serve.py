"""CLI: serve (the live model on an OpenAI-compatible server) and ask (a question from the terminal).

The wiring between the store and serving/ lives here: serving/ never reads the store, so these
commands read the live model from the ``models`` table and pass paths and names in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from threadtune.settings import Settings
from threadtune.shell import console, err_console, open_db, settings, user_errors

#: Seconds between checks of the store for a promotion or rollback.
WATCH_INTERVAL_S = 5.0


def live_for(s: Settings, db) -> object:  # noqa: ANN001 (a serving.backend.LiveModel)
    """The live model of ``s.team_id`` as serving/ wants it: the resolved base folder + adapter."""
    from bot.answer_prompt import live_model
    from serving.backend import LiveModel
    from serving.models import resolve

    row = live_model(db, s.team_id)
    base = resolve(row.base_model or s.base_model, s.models_dir).path
    adapter = Path(row.adapter_path) if row.adapter_path else None
    if adapter is not None and not adapter.is_dir():
        from serving.errors import ModelNotFound

        raise ModelNotFound(f"{adapter}: the adapter of live model {row.name} is missing; roll back "
                            "with `threadtune models rollback` or retrain")
    return LiveModel(row.name, base, adapter)


def default_url(s: Settings) -> str:
    """Where answers come from: THREADTUNE_SERVING_URL, or `threadtune serve` on loopback."""
    return s.serving_url or f"http://127.0.0.1:{s.serving_port}/v1"


@contextmanager
def live_server(s: Settings, db, *, port: int = 0) -> Iterator[tuple[str, str]]:  # noqa: ANN001
    """``(base_url, model)`` of a server answering with the live model, for curate, eval and the demo.

    Uses the server at :func:`default_url` when one answers there; otherwise starts the embedded
    server on ``port`` (0: a free one) for the duration of the ``with`` block.
    """
    from bot.answer_prompt import live_model
    from serving.backend import make_backend
    from serving.client import health
    from serving.embedded import served_name

    url = default_url(s)
    if health(url):
        yield url, served_name(live_model(db, s.team_id).name)
        return
    live = live_for(s, db)
    backend = backend_for(s, live, s.serving_backend, port=port)
    backend.start()
    try:
        yield backend.base_url, backend.model
    finally:
        backend.stop()


def backend_for(s: Settings, live, choice: str, *, port: int, attach: str | None = None,  # noqa: ANN001
                continuous_batching: bool = False):  # noqa: ANN201 (a serving.backend.Backend)
    """A not-yet-started server for ``live`` as the settings say (vLLM from its environment, or
    ``transformers serve``), its log under ``<data_dir>/serve``."""
    from serving.backend import make_backend

    return make_backend(choice, live, port=port, serving_url=attach, merged_dir=s.models_dir / "merged",
                        continuous_batching=continuous_batching, vllm_python=s.vllm_python,
                        cpu_kvcache_gib=s.vllm_cpu_kvcache_gib, log_path=s.data_dir / "serve" / "vllm.log")


def restart_if_dead(server) -> bool:  # noqa: ANN001 (a serving.backend.Backend)
    """Start a server we spawned again when it stopped answering (killed, out of memory); the
    model it served comes back with it. An attached server is not ours to restart. Returns whether
    it restarted."""
    from serving.errors import ServingError

    if server.alive() or not server.spawned:
        return False
    err_console.print("[bold red]the model server stopped answering:[/] restarting it", highlight=False)
    try:
        server.restart()
    except ServingError as err:
        err_console.print(f"[bold red]restart failed:[/] {err}; retrying in {WATCH_INTERVAL_S:g} s",
                          highlight=False)
        return False
    console.print(f"serving [bold]{server.model}[/] at {server.base_url} again")
    return True


def reload_if_changed(s: Settings, db, server, current: tuple) -> tuple:  # noqa: ANN001
    """Serve the live model when it differs from ``current`` (promote, rollback); returns the new
    ``(name, adapter_path)``. A failed reload is reported and retried at the next check."""
    from serving.errors import ServingError

    live = live_for(s, db)
    if (live.name, live.adapter_path) == current:
        return current
    console.print(f"live model changed to {live.name or 'base'}: reloading")
    try:
        model = server.serve_model(live.name, live.base_path, live.adapter_path)
    except ServingError as err:
        err_console.print(f"[bold red]reload failed:[/] {err}", highlight=False)
        return current
    console.print(f"serving [bold]{model}[/] at {server.base_url}")
    return (live.name, live.adapter_path)


def register(app: typer.Typer) -> None:
    """Add serve and ask to ``app``."""

    @app.command()
    @user_errors
    def serve(
        backend: Optional[str] = typer.Option(
            None, "--backend", "-b", help="embedded, vllm or auto (default: THREADTUNE_SERVING_BACKEND).",
            show_default=False),
        port: Optional[int] = typer.Option(
            None, "--port", help="Loopback port (default: THREADTUNE_SERVING_PORT).", show_default=False),
        url: Optional[str] = typer.Option(
            None, "--url", help="Attach to a running vLLM at this base URL instead of starting one.",
            show_default=False),
        once: bool = typer.Option(False, "--once", help="Start, check, print the URL and stop (a smoke test)."),
        continuous_batching: bool = typer.Option(
            False, "--continuous-batching", help="Embedded: transformers serve --continuous-batching."),
    ) -> None:
        """Serve the live model (base + adapter) on an OpenAI-compatible API; reload on promote/rollback."""
        from serving.backend import pick_backend

        s = settings()
        db = open_db(s)
        choice = pick_backend(backend or s.serving_backend, vllm_python=s.vllm_python)
        live = live_for(s, db)
        # THREADTUNE_SERVING_URL also tells the bot where to ask; an explicit embedded backend
        # starts its own server rather than attaching there.
        attach = url or (s.serving_url if choice == "vllm" or not backend else None)
        server = backend_for(s, live, choice, port=s.serving_port if port is None else port, attach=attach,
                             continuous_batching=continuous_batching)
        if attach:
            choice = "vllm, attached"
        with console.status(f"starting {choice} server for {live.name or 'the base model'}…"):
            server.start()
        try:
            model = server.serve_model(live.name, live.base_path, live.adapter_path)
            console.print(f"serving [bold]{model}[/] at {server.base_url} ({choice}); Ctrl-C stops")
            if once:
                return
            current = (live.name, live.adapter_path)
            while True:
                time.sleep(WATCH_INTERVAL_S)
                restart_if_dead(server)
                current = reload_if_changed(s, db, server, current)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()

    @app.command()
    @user_errors
    def ask(
        question: str = typer.Argument(..., help="The question, in quotes."),
        retrieval: Optional[bool] = typer.Option(
            None, "--retrieval/--no-retrieval", help="Use approved pairs (default: THREADTUNE_RETRIEVAL).",
            show_default=False),
        max_tokens: Optional[int] = typer.Option(
            None, "--max-tokens", help="Most tokens to write (default: THREADTUNE_ANSWER_MAX_TOKENS).",
            show_default=False),
    ) -> None:
        """Ask from the terminal as the bot answers: an approved answer verbatim, the model's (not verified), or none."""
        from rich.markup import escape

        from bot.answer_prompt import live_model, prepare
        from curation.answer_modes import (ABSTAIN, CLOSEST, VERIFIED, Thresholds, answer_text, check_generated,
                                           closest_label, held_back_note, settle)
        from curation.answer_team import pick_team
        from serving.client import ModelClient

        s = settings()
        db = open_db(s)
        if not question.strip():
            raise typer.BadParameter("give a question, e.g. threadtune ask \"how do I reset my password?\"")
        # `threadtune --team` and THREADTUNE_TEAM_ID set the workspace; else the data dir's only one
        team_id = pick_team(db, s.team_id, explicit="team_id" in s.model_fields_set)
        if team_id != s.team_id:
            err_console.print(f"asking workspace {team_id}, the only one in {s.data_dir}", style="dim")
        s = s.model_copy(update={"team_id": team_id})
        thresholds = Thresholds(s.answer_verify_score, s.answer_abstain_score)
        prep = prepare(db, team_id, question.strip(), default_system_prompt=s.system_prompt,
                       retrieval=s.retrieval if retrieval is None else retrieval, thresholds=thresholds)
        version = live_model(db, team_id).version
        mode = prep.mode
        if prep.mode == VERIFIED:
            pair = prep.verified_pair or {}
            by = ", ".join(pair.get("approved_by") or []) or "the team"
            console.print(f"[green]✔ verified answer[/] — approved by {escape(by)}"
                          + (f" on {pair['approved_at'][:10]}" if pair.get("approved_at") else ""),
                          highlight=False)
            console.print(answer_text(prep.decision), markup=False, highlight=False, soft_wrap=True)
        elif prep.mode == ABSTAIN:
            console.print(answer_text(prep.decision), markup=False, highlight=False, soft_wrap=True)
            err_console.print(f"evidence {prep.decision.evidence:.2f} < THREADTUNE_ANSWER_ABSTAIN_SCORE "
                              f"{thresholds.abstain:.2f} (best approved match {prep.decision.score:.2f}); "
                              "in Slack the bot asks the team", style="dim")
        else:
            text = ""
            with live_server(s, db) as (base_url, model):
                client = ModelClient(base_url, model, timeout=s.answer_timeout_s)
                # not streamed to the terminal: a sentence is shown only once it is checked
                with err_console.status("the model is writing…"):
                    for delta in client.stream(prep.messages, max_tokens=max_tokens or s.answer_max_tokens):
                        text += delta
            checked = check_generated(text, question, prep.pairs)
            final = settle(prep.decision, checked)
            if final.mode == CLOSEST and final.pair is not None:
                console.print(f"[cyan]≈ {escape(closest_label(final.pair))}[/]", highlight=False)
            console.print(answer_text(final, checked.text), markup=False, highlight=False, soft_wrap=True)
            notes = [held_back_note(checked.held_back)] + (
                ["not in the approved answers it used: " + ", ".join(checked.flags)] if checked.flags else [])
            if final.mode == CLOSEST:
                err_console.print(f"the model's answer was all unsupported ({notes[0]}); quoted the best "
                                  "approved pair instead", style="dim", markup=False)
            elif final.mode == ABSTAIN:
                err_console.print(f"the model's answer was all unsupported ({notes[0]}); in Slack the bot "
                                  "asks the team", style="dim", markup=False)
            else:
                console.print("[yellow]⚠ not verified[/] — written by the model"
                              + "".join("; " + escape(n) for n in notes if n), highlight=False)
            mode = final.mode
        for src in [] if mode == ABSTAIN else prep.sources[:1] if mode == CLOSEST else prep.sources:
            where = src["permalink"] or src.get("document") or f"approved pair #{src['candidate_id']}"
            console.print(f"Based on: {where}", markup=False, highlight=False)
        err_console.print(f"threadtune · {mode} · model {version}", style="dim")
