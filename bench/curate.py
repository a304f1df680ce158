"""Curation on real threads, side by side: each backend (vLLM, `transformers serve`) and each
number of sources in flight runs the product's curate over the same threads, in one run.

Threads come from ``../shared/data/julialang-slack`` (helpdesk: the first threads with replies,
whatever their length, unless ``--max-chars``), imported into a temporary store through the
Slack-export importer. Each (backend, concurrency) runs on its own copy of that store, so all do
exactly the same work. The servers are started by curation's own :func:`llm_session`.

    python bench/curate.py [--threads 40] [--backends vllm,embedded] [--concurrency 1,4]
                           [--embedded-concurrency 1] [--max-tokens 384] [--max-chars N] [--cap-s S]

Per run: wall seconds, sources, pairs, LLM replies (and per minute), the share that parsed,
replies cut off looping. ``--cap-s`` caps every run but the goal's (vLLM, 4 in flight), e.g. the
slow `transformers serve`: a capped run stops after the source that crosses the cap and reports
over the sources it finished. Last line: JSON with every run and the ratios of LLM replies per
minute (vLLM vs embedded at the same concurrency, 4 in flight vs 1 on the same backend).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "julialang-slack"
TEAM = "T0BENCH"


def mini_export(dest: Path, n_threads: int, max_chars: int | None = None) -> Path:
    """An export folder with the first ``n_threads`` helpdesk threads that have replies (up to
    ``max_chars`` characters each when given)."""
    threads: dict[str, list[dict]] = defaultdict(list)
    for day in sorted((DATA / "helpdesk").glob("*.json")):
        for m in json.loads(day.read_text()):
            threads[m.get("thread_ts", m["ts"])].append(m)
    chosen = [msgs for msgs in threads.values()
              if len(msgs) >= 2 and (max_chars is None or sum(len(m.get("text", "")) for m in msgs) <= max_chars)
              ][:n_threads]
    (dest / "helpdesk").mkdir(parents=True)
    channels = [c for c in json.loads((DATA / "channels.json").read_text()) if c["name"] == "helpdesk"]
    (dest / "channels.json").write_text(json.dumps(channels))
    (dest / "users.json").write_text((DATA / "users.json").read_text())
    (dest / "helpdesk" / "2020-12-01.json").write_text(json.dumps([m for t in chosen for m in t]))
    return dest


class TimeUp(Exception):
    """A capped run reached its wall-time cap."""


def run(db_path: Path, llm, concurrency: int, label: str, cap_s: float | None = None) -> dict[str, float]:
    """The product's curate over the store at ``db_path``; with ``cap_s``, stopped after the first
    source that ends past it (the figures are then over the sources it finished)."""
    from curation.curate import CurateReport, curate
    from curation.store import connect

    db = connect(db_path)
    report = CurateReport()
    start = time.perf_counter()

    def check(done: int, total: int, what: str) -> None:
        if cap_s is not None and time.perf_counter() - start > cap_s and done < total:
            raise TimeUp

    try:
        curate(db, TEAM, llm, concurrency=concurrency, report=report, progress=check)
        capped = False
    except TimeUp:
        capped = True
    seconds = time.perf_counter() - start
    db.close()
    pairs = sum(report.candidates.values()) + report.duplicates
    print(f"{label} concurrency {concurrency}{' (capped)' if capped else ''}: {report.summary()} — "
          f"{pairs} pairs in {seconds:.1f} s", flush=True)
    return {"seconds": round(seconds, 1), "capped": capped, "sources": sum(report.sources.values()),
            "chunks": report.chunks, "pairs": pairs, "replies": report.replies,
            "replies_per_min": round(60 * report.replies / seconds, 2), "parse_rate": report.parse_rate,
            "cut_looping": report.cut, "llm_errors": len(report.llm_errors)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=40)
    ap.add_argument("--backends", default="vllm,embedded", help="comma-separated: vllm, embedded")
    ap.add_argument("--concurrency", default="1,4", help="sources in flight on vLLM, comma-separated")
    ap.add_argument("--embedded-concurrency", default="1",
                    help="sources in flight on transformers serve (it generates one request at a time)")
    ap.add_argument("--max-tokens", type=int, default=384, help="token budget of one extraction reply")
    ap.add_argument("--max-chars", type=int, default=None, help="only threads up to this many characters")
    ap.add_argument("--models-dir", type=Path, default=None, help="where the embedded model is converted")
    ap.add_argument("--cap-s", type=float, default=None,
                    help="wall-time cap of every run but the goal's (vLLM at its highest concurrency): "
                         "a capped run reports over the sources it finished")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: this bench reads the shared Julia Slack export")

    from curation.llm import LLMConfig, llm_session
    from curation.slack_export import import_export
    from curation.store import connect
    from serving.models import resolve

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    levels = {"vllm": [int(c) for c in args.concurrency.split(",")],
              "embedded": [int(c) for c in args.embedded_concurrency.split(",")]}
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base = tmp / "base.db"
        db = connect(base)
        import_export(db, mini_export(tmp / "export", args.threads, args.max_chars), TEAM)
        db.close()
        model = resolve("embedded", args.models_dir or (tmp / "models")).path
        for backend in backends:
            cfg = LLMConfig(base_model=model, backend=backend, max_tokens=args.max_tokens, log_dir=tmp)
            started = time.perf_counter()
            with llm_session(cfg) as llm:
                print(f"{backend}: server up in {time.perf_counter() - started:.0f} s", flush=True)
                results[backend] = {}
                for c in levels[backend]:
                    shutil.copy(base, tmp / f"{backend}-{c}.db")
                    goal = backend == "vllm" and c == max(levels["vllm"])
                    results[backend][str(c)] = run(tmp / f"{backend}-{c}.db", llm, c, backend,
                                                   cap_s=None if goal else args.cap_s)

    def ratio(a: dict | None, b: dict | None) -> float | None:
        """Speed-up of run a over run b: LLM replies per minute (capped runs finish fewer sources)."""
        if not a or not b or not b["replies_per_min"]:
            return None
        return round(a["replies_per_min"] / b["replies_per_min"], 2)

    out: dict = {"threads": args.threads, "max_tokens": args.max_tokens, "cap_s": args.cap_s, "runs": results}
    if "4" in results.get("vllm", {}):
        goal = results["vllm"]["4"]
        # Every source the import made, curated in time (the goal run is never capped; the import
        # can make fewer sources than threads: 40 threads gave 39).
        out["goal_under_600_s"] = goal["seconds"] < 600 and not goal["capped"]
    if "vllm" in results and "embedded" in results:
        out["speedup_vllm_vs_embedded"] = {c: ratio(results["vllm"].get(c), results["embedded"].get(c))
                                           for c in results["embedded"] if c in results["vllm"]}
    for backend, runs in results.items():
        if "1" in runs and "4" in runs:
            out[f"speedup_4_vs_1_{backend}"] = ratio(runs["4"], runs["1"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
