"""Curation throughput: extract from real support threads against the embedded server with 4
requests in flight vs 1, in one run, on the same server and the same threads.

Threads come from ``../shared/data/julialang-slack`` (helpdesk, short answered threads first),
imported into a temporary store through the Slack-export importer. Each concurrency level runs on
its own copy of that store, so both do exactly the same work.

    python bench/curate.py [--threads 40] [--max-tokens 64] [--base-url URL --model NAME]
                           [--continuous-batching]

``--base-url`` measures an already-running OpenAI-compatible server (vLLM …) instead of starting
``transformers serve``. Last line: JSON with pairs/s and requests/s for both, and the ratios.
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


def mini_export(dest: Path, n_threads: int, max_chars: int = 1500) -> Path:
    """An export folder with the first ``n_threads`` short helpdesk threads that have replies."""
    threads: dict[str, list[dict]] = defaultdict(list)
    for day in sorted((DATA / "helpdesk").glob("*.json")):
        for m in json.loads(day.read_text()):
            threads[m.get("thread_ts", m["ts"])].append(m)
    chosen = [msgs for msgs in threads.values()
              if len(msgs) >= 2 and sum(len(m.get("text", "")) for m in msgs) <= max_chars][:n_threads]
    (dest / "helpdesk").mkdir(parents=True)
    channels = [c for c in json.loads((DATA / "channels.json").read_text()) if c["name"] == "helpdesk"]
    (dest / "channels.json").write_text(json.dumps(channels))
    (dest / "users.json").write_text((DATA / "users.json").read_text())
    (dest / "helpdesk" / "2020-12-01.json").write_text(json.dumps([m for t in chosen for m in t]))
    return dest


def run(db_path: Path, llm, concurrency: int) -> dict[str, float]:
    from curation.curate import curate
    from curation.store import connect

    db = connect(db_path)
    calls_before = llm.calls
    start = time.perf_counter()
    report = curate(db, TEAM, llm, concurrency=concurrency)
    seconds = time.perf_counter() - start
    db.close()
    pairs = sum(report.candidates.values()) + report.duplicates
    requests = llm.calls - calls_before
    print(f"concurrency {concurrency}: {report.summary()} — {pairs} pairs, {requests} requests "
          f"in {seconds:.1f} s", flush=True)
    return {"seconds": round(seconds, 2), "pairs": pairs, "requests": requests,
            "pairs_per_s": round(pairs / seconds, 3), "requests_per_s": round(requests / seconds, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--base-url", default=None, help="an already-running OpenAI-compatible server")
    ap.add_argument("--model", default=None, help="model name on --base-url")
    ap.add_argument("--models-dir", type=Path, default=None, help="where the embedded model is converted")
    ap.add_argument("--continuous-batching", action="store_true",
                    help="start transformers serve with continuous batching")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: this bench reads the shared Julia Slack export")

    import openai

    from curation.extract import LLM
    from curation.slack_export import import_export
    from curation.store import connect

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base = tmp / "base.db"
        db = connect(base)
        import_export(db, mini_export(tmp / "export", args.threads), TEAM)
        db.close()
        for c in (1, 4):
            shutil.copy(base, tmp / f"c{c}.db")

        def measure(client, model: str) -> dict[str, dict[str, float]]:
            llm = LLM(client, model, max_tokens=args.max_tokens, max_attempts=1)
            return {str(c): run(tmp / f"c{c}.db", llm, c) for c in (1, 4)}

        if args.base_url:
            client = openai.OpenAI(base_url=args.base_url, api_key="threadtune", max_retries=0, timeout=600)
            results = measure(client, args.model or client.models.list().data[0].id)
        else:
            from serving.embedded import EmbeddedServer
            from serving.models import resolve

            models_dir = args.models_dir or (tmp / "models")
            model = resolve("embedded", models_dir).path
            with EmbeddedServer(model, name="curation", continuous_batching=args.continuous_batching) as server:
                client = openai.OpenAI(base_url=server.base_url, api_key="threadtune", max_retries=0, timeout=600)
                results = measure(client, server.model)

    one, four = results["1"], results["4"]
    print(json.dumps({
        "threads": args.threads, "max_tokens": args.max_tokens,
        "pairs_per_s_1": one["pairs_per_s"], "pairs_per_s_4": four["pairs_per_s"],
        "pairs_ratio_4_vs_1": round(four["pairs_per_s"] / one["pairs_per_s"], 2) if one["pairs_per_s"] else None,
        "requests_per_s_1": one["requests_per_s"], "requests_per_s_4": four["requests_per_s"],
        "requests_ratio_4_vs_1": round(four["requests_per_s"] / one["requests_per_s"], 2)
        if one["requests_per_s"] else None,
        "seconds_1": one["seconds"], "seconds_4": four["seconds"],
    }))


if __name__ == "__main__":
    main()
