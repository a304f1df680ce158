"""The offline demo: the whole loop on the embedded model, with no Slack, no GPU and no network.

import the Acme workspace → add the handbook → curate (deterministic pairs + validated LLM rewrites)
→ the demo reviewer approves through the CLI's review code → dataset v1 → train cpu-small → evaluate
base, base+retrieval, tuned, tuned+retrieval on held-out phrasings → promote → serve the tuned model
(vLLM with the adapter when .venv-vllm is present, else transformers serve with a merged copy) →
answer three held-out questions, base vs tuned.

Each step shows a spinner or a progress bar and ends with a one-line result. The parts do the work;
this module only wires them, in order, against a fresh data dir.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from threadtune.demo_serving import serve_and_ask, start_vllm
from threadtune.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WORKSPACE = ROOT / "examples" / "acme-workspace"
REVIEWER = "demo-reviewer"
MARKER = ".threadtune-demo"


class DemoError(Exception):
    """The demo cannot run or a step failed; the message says which and why."""


@dataclass
class DemoOptions:
    """How to run the demo."""

    workdir: Path
    fast: bool = False
    workspace: Path = WORKSPACE
    use_llm: bool = True


@dataclass
class DemoResult:
    """What the demo produced, for the summary and for tests."""

    steps: list[tuple[str, str, float]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    side_by_side: list[dict[str, str]] = field(default_factory=list)
    chart: str | None = None
    model: str | None = None
    dataset: str | None = None


def fresh_workdir(path: Path) -> Path:
    """Create ``path`` empty; a folder from an earlier demo run (it has the marker) is wiped, any
    other non-empty folder is refused rather than deleted."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise DemoError(f"{path} exists and is not a demo folder; pass --workdir to a new or empty folder")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("created by `threadtune demo`; safe to delete\n")
    return path


def demo_settings(base: Settings, workdir: Path) -> Settings:
    """The demo's own settings: a fresh data dir, the embedded model, no Slack, no remote LLM."""
    return base.model_copy(update={
        "data_dir": workdir / "data", "team_id": "T0ACME", "base_model": base.base_model,
        "llm_base_url": None, "slack_bot_token": None, "slack_app_token": None,
        "review_quorum": 1, "admin_ids": [REVIEWER], "reviewer_ids": [REVIEWER],
    })


class Steps:
    """Rich output for the demo: one spinner or bar per step, then a one-line result."""

    def __init__(self, console: Console, result: DemoResult) -> None:
        self.console = console
        self.result = result
        self.n = 0

    @contextmanager
    def step(self, title: str, total: int | None = None) -> Iterator[Callable[..., None]]:
        """Run a step; yields ``update(done=None, total=None, text=None)``. The block sets the
        one-line result by calling ``update(result="...")``."""
        self.n += 1
        start = time.perf_counter()
        outcome: dict[str, str] = {"result": ""}
        columns = [SpinnerColumn(), TextColumn(f"[bold]{self.n:>2}. {title}[/]"), BarColumn(),
                   MofNCompleteColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task("", total=total)

            def update(done: int | None = None, total: int | None = None, text: str | None = None,
                       result: str | None = None) -> None:
                if total is not None:
                    bar.update(task, total=total)
                if done is not None:
                    bar.update(task, completed=done)
                if text is not None:
                    bar.update(task, description=text[:60])
                if result is not None:
                    outcome["result"] = result

            try:
                yield update
            except Exception as err:
                raise DemoError(f"step {self.n} ({title}) failed: {err}") from err
        seconds = time.perf_counter() - start
        self.console.print(f"[green]✓[/] {self.n:>2}. {title:<28} {outcome['result']}  [dim]({seconds:.0f}s)[/]")
        self.result.steps.append((title, outcome["result"], seconds))


def run_demo(base: Settings, opts: DemoOptions, console: Console | None = None) -> DemoResult:
    """Run the whole loop; returns what it produced. Raises DemoError naming the failed step.

    With vLLM, one server serves the whole run, the product's own path: the base model for
    curation, then the trained model after promotion (on a CPU merged and swapped in behind the
    same URL, on a GPU the adapter hot-loaded)."""
    servers: list[Any] = []
    try:
        return _run(base, opts, console, servers)
    finally:
        for server in servers:
            server.stop()


def _run(base: Settings, opts: DemoOptions, console: Console | None, servers: list[Any]) -> DemoResult:
    from curation import datasets, review
    from curation.candidates import list_candidates
    from curation.curate import run_curate
    from threadtune.curation_llm import curation_llm
    from curation.documents import add_document
    from curation.channels import set_watched
    from curation.model_versions import list_models
    from curation.slack_export import import_export
    from curation.store import connect
    from serving.models import resolve
    from training import registry
    from training.errors import TrainingError
    from training.notify import SilentNotifier
    from training.pipeline import evaluate_model, plan_train, train_now

    console = console or Console()
    if not (opts.workspace / "channels.json").is_file():
        raise DemoError(f"{opts.workspace}: the demo workspace is missing (examples/acme-workspace)")
    workdir = fresh_workdir(opts.workdir)
    s = demo_settings(base, workdir)
    s.data_dir.mkdir(parents=True)
    result = DemoResult()
    steps = Steps(console, result)
    team = s.team_id
    heldout = opts.workspace / "heldout.jsonl"
    if opts.fast:  # fewer held-out questions: the comparison still runs, in a fraction of the time
        lines = [line for line in heldout.read_text().splitlines() if line.strip()][:6]
        heldout = workdir / "heldout-fast.jsonl"
        heldout.write_text("\n".join(lines) + "\n")
    console.rule("[bold]threadtune demo[/] — the whole loop, offline, on SmolLM2-135M" + (" (fast)" if opts.fast else ""))

    with steps.step("prepare the base model") as update:
        db = connect(s.db_path)
        model = resolve(s.base_model, s.models_dir, progress=lambda msg: update(text=msg))
        update(result=f"{model.name} → {model.path.relative_to(workdir)}")

    with steps.step("import the workspace") as update:
        summary = import_export(db, opts.workspace, team,
                                progress=lambda done, total, name: update(done, total, name))
        for (channel_id,) in db.execute("select id from channels where team_id = ?", [team]).fetchall():
            set_watched(db, team, channel_id, True, by=REVIEWER)
        doc = add_document(db, team, opts.workspace / "handbook.md", actor=REVIEWER)
        skipped = sum(summary.skipped.values())
        update(result=f"{summary.channels} channels, {summary.users} users, {summary.messages} messages, "
                      f"{summary.threads} threads ({skipped} skipped), handbook doc #{doc['id']}")

    with steps.step("curate with the embedded model" if opts.use_llm else "curate (deterministic only)") as update:
        # A 135M model on 2 CPU cores writes about ten tokens a second: the LLM reads the first
        # threads (extraction and a standalone rewrite, kept only when they pass the checks), and
        # every other thread gets its deterministic pair.
        llm_sources = (3 if opts.fast else 10) if opts.use_llm else 0
        progress = lambda done, total, label: update(done, total, label)  # noqa: E731
        vllm = start_vllm(s, model.path) if llm_sources else None
        if vllm is not None:
            update(text="starting vLLM")
            servers.append(vllm.start())
        endpoint = {"base_url": vllm.base_url, "model": vllm.model} if vllm else {}
        llm = curation_llm(s, max_tokens=160 if opts.fast else 256, **endpoint) if llm_sources else None
        report = run_curate(db, team, llm, answered_reaction=s.answered_reaction,
                            limit=llm_sources or None, progress=progress)
        if llm_sources:
            rest = run_curate(db, team, None, answered_reaction=s.answered_reaction, progress=progress)
            report.llm_errors += rest.llm_errors
        counts = dict(db.execute("select status, count(*) from candidates where team_id = ? group by status",
                                 [team]).fetchall())
        update(result=f"{sum(counts.values())} candidates: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
               + (f" ({len(report.llm_errors)} LLM replies unusable)" if opts.use_llm else " (no LLM)"))

    with steps.step("review as the demo reviewer") as update:
        pending = list_candidates(db, team, status="pending")
        decisions = []
        for n, cand in enumerate(pending, start=1):
            reason = demo_review(cand)
            if reason:
                review.reject(db, team, cand["id"], REVIEWER, reason, via="cli")
                decisions.append(("reject", cand, reason))
            else:
                review.approve(db, team, cand["id"], REVIEWER, via="cli")
                decisions.append(("approve", cand, ""))
            update(n, len(pending), cand["question"])
        rejected = list_candidates(db, team, status="auto_rejected")
        approved = sum(1 for d in decisions if d[0] == "approve")
        update(result=f"approved {approved}, rejected {len(decisions) - approved}; "
                      f"{len(rejected)} were auto-rejected by the checks")
    table = Table(title="review decisions (a sample)", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("decision")
    table.add_column("question")
    table.add_column("answer / reason")
    shown = [d for d in decisions if d[0] == "approve"][:6] + [d for d in decisions if d[0] == "reject"][:3]
    for action, cand, reason in shown:
        color = "green" if action == "approve" else "red"
        table.add_row(str(cand["id"]), f"[{color}]{action}[/]", cand["question"][:60], (reason or cand["answer"])[:60])
    for cand in rejected[:3]:
        table.add_row(str(cand["id"]), "[red]auto-reject[/]", cand["question"][:60], (cand.get("reject_reason") or "")[:60])
    console.print(table)

    with steps.step("create dataset v1") as update:
        ds = datasets.create_dataset(db, team, created_by=REVIEWER, system_prompt=s.system_prompt)
        result.dataset = ds["name"]
        update(result=f"{ds['name']} ({ds['id'][:12]}): {ds['n_train']} train, {ds['n_eval']} eval")

    with steps.step("train cpu-small (LoRA)", total=None) as update:
        # the derived schedule (about 600 examples seen) capped so the demo stays within minutes
        overrides: dict[str, Any] = {"max_steps": 8 if opts.fast else 40}
        plan = plan_train(db, team, dataset=ds["name"], preset="cpu-small", overrides=overrides,
                          base_model=s.base_model, models_dir=s.models_dir)

        class BarNotifier(SilentNotifier):
            def progress(self, job: dict[str, Any], progress: dict[str, Any]) -> None:
                loss = progress.get("loss")
                update(progress.get("step"), progress.get("total"),
                       f"loss {loss:.3f}" if isinstance(loss, (int, float)) else None)

        finished = train_now(db, team, plan, data_dir=s.data_dir, models_dir=s.models_dir,
                             notifier=BarNotifier(), created_by=REVIEWER)
        if finished.get("status") != "done":
            raise DemoError(f"training job {finished.get('id')} ended {finished.get('status')}: "
                            f"{finished.get('error')}")
        trained = list_models(db, team)[-1]
        result.model = trained["name"]
        res = json.loads(finished["result"]) if isinstance(finished.get("result"), str) else (finished.get("result") or {})
        update(result=f"model {trained['name']} trained on {ds['name']}"
               + (f": loss {res['first_loss']:.2f} → {res['last_loss']:.2f}" if res.get("first_loss") and res.get("last_loss") else ""))

    with steps.step("evaluate six systems", total=6) as update:
        eval_report = evaluate_model(db, team, trained["name"], out_dir=workdir / "reports",
                                     eval_file=heldout, max_new_tokens=48 if opts.fast else 96,
                                     progress=lambda system, done, total: update(done, total, system))
        result.report = eval_report
        result.chart = eval_report["files"]["chart"]
        sy = eval_report["systems"]
        update(result=f"token F1 base {sy['base']['token_f1']:.2f} → tuned {sy['tuned']['token_f1']:.2f} "
                      f"→ bot {sy['bot']['token_f1'] or 0:.2f} on {eval_report['n']} held-out phrasings")

    with steps.step("promote and serve the tuned model") as update:
        try:
            registry.promote(db, team, trained["name"], actor=REVIEWER)
            gate = "passed the eval gate"
        except TrainingError as refused:  # e.g. --fast trains too little to beat the base model
            registry.promote(db, team, trained["name"], actor=REVIEWER, force=True)
            gate = f"forced past the eval gate ({refused})"
        served, backend = serve_and_ask(s, db, team, trained, heldout, n=3, update=update,
                                        max_tokens=48 if opts.fast else 96,
                                        server=servers[0] if servers else None)
        base_by_q = {e["question"]: e.get("base", "") for e in eval_report.get("examples", [])}
        for row in served:
            row["base"] = base_by_q.get(row["question"], "")
        result.side_by_side = served
        update(result=f"{trained['name']} {gate}, live on {backend}; answered {len(served)} "
                      "held-out questions")

    print_summary(console, result, workdir)
    return result


def demo_review(candidate: dict[str, Any]) -> str | None:
    """The demo reviewer's rule of thumb: a reason to reject, or None to approve. A pair whose
    "question" asks nothing (an announcement taken as a question) is not a FAQ."""
    question = " ".join(candidate["question"].split())
    if "?" not in question:
        return "not a question: an announcement or a statement"
    return None


def print_summary(console: Console, result: DemoResult, workdir: Path) -> None:
    """The comparison table, the side-by-side answers and the chart's path."""
    systems = result.report.get("systems", {})
    table = Table(title=f"evaluation on {result.report.get('n', 0)} held-out phrasings ({result.model} on {result.dataset})")
    for col in ("system", "token F1", "ROUGE-L", "fact recall", "latency s"):
        table.add_column(col, justify="right" if col != "system" else "left")
    for name, m in systems.items():
        def fmt(v: Any) -> str:
            return "—" if v is None else f"{v:.3f}"
        table.add_row(name, fmt(m.get("token_f1")), fmt(m.get("rouge_l")), fmt(m.get("fact_recall")),
                      fmt(m.get("latency_s")))
    console.print(table)
    side = Table(title="held-out questions: the base model alone vs what the assistant answers", show_lines=True)
    for col in ("question", "base model", "assistant", "reference"):
        side.add_column(col, ratio=1)
    for row in result.side_by_side:
        side.add_row(row["question"], row.get("base", "")[:220],
                     escape(f"[{row.get('mode', '')}] " + row["tuned"][:220]), escape(row["reference"]))
    console.print(side)
    total = sum(t for _, _, t in result.steps)
    console.print(f"chart: [bold]{result.chart}[/]")
    console.print(f"data dir: {workdir / 'data'}   total {total / 60:.1f} min")
    console.print("ask the assistant yourself:", highlight=False)
    verified = [r["question"] for r in result.side_by_side if r.get("mode", "").startswith("verified")]
    console.print(f"  {ask_command(workdir / 'data', verified[0] if verified else None)}", markup=False,
                  highlight=False, soft_wrap=True)


def ask_command(data_dir: Path, question: str | None = None) -> str:
    """The exact command that asks the demo's assistant from the terminal: ``question`` (one it
    answered verbatim, when there was one) or the expense-limit question."""
    import shlex

    question = question or "Up to what amount can I expense something without my manager approving?"
    return f"threadtune --data-dir {shlex.quote(str(data_dir))} ask {shlex.quote(question)}"
