"""Throughput of the embedded server: 16 chat requests, 8 concurrent vs sequential, in one run.

    python bench/serve.py [--model DIR] [--requests 16] [--concurrency 8] [--max-tokens 32]
                          [--continuous-batching]
    python bench/serve.py --vllm http://gpu-host:8000/v1 --adapter threadtune/v3 --merged merged-v3

The second form measures a running vLLM server: the LoRA adapter vs the merged model, both at
concurrency 32 (start vLLM with the adapter in --lora-modules and a second served model that is
the merged copy, or run it twice). Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTIONS = [
    "How do I reset my password?", "Where do I find last month's invoice?", "How do I add a teammate?",
    "Why is the VPN slow?", "How do I export my data?", "What are the support hours?",
    "How do I change my billing email?", "Can I get a refund?",
]


def run(client, model: str, n: int, concurrency: int, max_tokens: int) -> dict:
    """``n`` chat requests with ``concurrency`` in flight; requests/s, tokens/s and latency."""
    def one(i: int) -> tuple[float, int]:
        t = time.perf_counter()
        out = client.chat([{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
                          max_tokens=max_tokens, model=model)
        return time.perf_counter() - t, out.completion_tokens

    started = time.perf_counter()
    if concurrency == 1:
        results = [one(i) for i in range(n)]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - started
    lat = sorted(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    return {"requests": n, "concurrency": concurrency, "wall_s": round(wall, 3),
            "requests_per_s": round(n / wall, 3), "tokens_per_s": round(tokens / wall, 2),
            "p50_s": round(statistics.median(lat), 3), "p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3)}


def embedded(args: argparse.Namespace) -> dict:
    from serving.client import ModelClient
    from serving.embedded import EmbeddedServer
    from serving.models import resolve

    model_dir = Path(args.model) if args.model else resolve(
        "embedded", Path(os.environ.get("THREADTUNE_DATA_DIR", Path.home() / ".threadtune")) / "models").path
    with EmbeddedServer(model_dir, continuous_batching=args.continuous_batching) as server:
        client = ModelClient(server.base_url, server.model, timeout=600, max_retries=0)
        run(client, server.model, 2, 1, 4)  # warm-up
        seq = run(client, server.model, args.requests, 1, args.max_tokens)
        conc = run(client, server.model, args.requests, args.concurrency, args.max_tokens)
    return {"backend": "embedded", "continuous_batching": args.continuous_batching,
            "sequential": seq, "concurrent": conc,
            "ratio_requests_per_s": round(conc["requests_per_s"] / seq["requests_per_s"], 2),
            "ratio_tokens_per_s": round(conc["tokens_per_s"] / max(seq["tokens_per_s"], 1e-9), 2),
            "goal_ratio": 2.0}


def vllm(args: argparse.Namespace) -> dict:
    from serving.client import ModelClient

    client = ModelClient(args.vllm, args.adapter, timeout=600, max_retries=0)
    run(client, args.adapter, 4, 4, 4)
    adapter = run(client, args.adapter, args.requests, 32, args.max_tokens)
    merged = run(client, args.merged, args.requests, 32, args.max_tokens)
    return {"backend": "vllm", "adapter": adapter, "merged": merged,
            "ratio_adapter_vs_merged_tokens_per_s": round(adapter["tokens_per_s"] / max(merged["tokens_per_s"], 1e-9), 3),
            "goal_ratio": 0.85}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="HF model folder (default: the embedded SmolLM2, converted once)")
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--continuous-batching", action="store_true", help="transformers serve --continuous-batching")
    p.add_argument("--vllm", help="base URL of a running vLLM server (…/v1)")
    p.add_argument("--adapter", default="threadtune/v1", help="vLLM: the adapter's served name")
    p.add_argument("--merged", default="threadtune/base", help="vLLM: the merged model's served name")
    args = p.parse_args()
    if args.vllm and args.requests == 16:
        args.requests = 128
    result = vllm(args) if args.vllm else embedded(args)
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key:>12}: " + ", ".join(f"{k} {v}" for k, v in value.items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
