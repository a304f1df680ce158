"""Serving throughput, side by side in one run, through threadtune's own client.

    python bench/serve.py [--backends embedded,vllm] [--requests 16] [--concurrency 8] [--max-tokens 64]
    python bench/serve.py --adapter-vs-merged [--adapter DIR] [--levels 8,32] [--configs adapter,merged,…]

The first form starts each backend in turn (`transformers serve`, then vLLM from .venv-vllm) on
the embedded SmolLM2 and sends the same prompts, one at a time and ``--concurrency`` in flight:
requests/s, tokens/s, p50 and p99 latency, and vLLM's tokens/s over `transformers serve`'s at the
same concurrency (goal: 2x at 8 in flight).

The second form measures what serving a tuned model costs on vLLM: a LoRA adapter served unmerged
(``--lora-modules``, hot-loadable) against the same adapter merged into the base and served as a
plain model, at each of ``--levels`` in flight (goal: adapter at least 0.85x the merged tokens/s).
Without ``--adapter`` a rank-16 LoRA over all linear layers is made with random weights (what
it computes costs the same as a trained one). ``--configs`` picks vLLM set-ups to compare side by
side (:data:`CONFIGS`: ``--max-loras 1``, a smaller prefill batch, a merged model with LoRA off).
Every run ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPTS = [
    "How do I reset my password?", "Where do I find last month's invoice?", "How do I add a teammate?",
    "Why is the VPN slow?", "How do I export my data?", "What are the support hours?",
    "How do I change my billing email?", "Can I get a refund?",
    "How do I install a package in Julia?", "What does a MethodError mean?",
    "How do I plot two series on one chart?", "Why is my loop slow in a global scope?",
    "How do I read a CSV file?", "How do I update all packages?", "What is multiple dispatch?",
    "How do I time a function?",
]


def run(client, model: str, n: int, concurrency: int, max_tokens: int) -> dict:
    """``n`` chat requests with ``concurrency`` in flight; requests/s, tokens/s and latency."""
    def one(i: int) -> tuple[float, int]:
        t = time.perf_counter()
        out = client.chat([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}],
                          max_tokens=max_tokens, model=model)
        return time.perf_counter() - t, out.completion_tokens

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - started
    lat = sorted(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    return {"requests": n, "concurrency": concurrency, "wall_s": round(wall, 2),
            "requests_per_s": round(n / wall, 3), "tokens_per_s": round(tokens / wall, 2),
            "p50_s": round(statistics.median(lat), 3),
            "p99_s": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3)}


def base_model(args: argparse.Namespace) -> Path:
    from serving.models import resolve

    return Path(args.model) if args.model else resolve("embedded", args.models_dir).path


def start(kind: str, live, tmp: Path, *, continuous_batching: bool = False):
    from serving.backend import make_backend

    server = make_backend(kind, live, port=0, work_dir=tmp / f"{kind}-work", merged_dir=tmp / "merged",
                          log_path=tmp / f"{kind}.log", continuous_batching=continuous_batching)
    t = time.perf_counter()
    server.start()
    print(f"{kind}: up in {time.perf_counter() - t:.0f} s", flush=True)
    return server


def backends(args: argparse.Namespace, tmp: Path) -> dict:
    from serving.backend import LiveModel
    from serving.client import ModelClient

    live = LiveModel(None, base_model(args))
    out: dict = {"max_tokens": args.max_tokens, "embedded_continuous_batching": args.continuous_batching}
    for kind in args.backends.split(","):
        server = start(kind, live, tmp, continuous_batching=args.continuous_batching)
        try:
            client = ModelClient(server.base_url, server.model, timeout=900, max_retries=0)
            run(client, server.model, 2, 2, 4)  # warm-up
            out[kind] = {}
            for mode, c in (("sequential", 1), ("concurrent", args.concurrency)):
                out[kind][mode] = run(client, server.model, args.requests, c, args.max_tokens)
                print(f"{kind} {mode}: {out[kind][mode]}", flush=True)
            client.close()
        finally:
            server.stop()
    if "vllm" in out and "embedded" in out:
        for mode in ("sequential", "concurrent"):
            out[f"vllm_vs_embedded_tokens_per_s_{mode}"] = round(
                out["vllm"][mode]["tokens_per_s"] / max(out["embedded"][mode]["tokens_per_s"], 1e-9), 2)
        out["goal_vllm_vs_embedded_at_concurrency"] = 2.0
    return out


def random_adapter(base: Path, out: Path, rank: int = 16) -> Path:
    """A rank-``rank`` LoRA over every linear layer of ``base`` with random (non-zero) weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    peft = get_peft_model(model, LoraConfig(
        r=rank, lora_alpha=rank, init_lora_weights=False, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    peft.save_pretrained(str(out))
    return out


#: vLLM configurations for --adapter-vs-merged: (model served, extra VllmConfig fields).
#: ``adapter`` is the product's hot-load set-up; ``merged-nolora`` is what a merged live server runs.
CONFIGS = {
    "adapter": ("adapter", {}),
    "adapter-loras1": ("adapter", {"max_loras": 1}),
    "adapter-loras1-batched512": ("adapter", {"max_loras": 1, "extra_args": ["--max-num-batched-tokens", "512"]}),
    "merged": ("merged", {}),
    "merged-nolora": ("merged", {"enable_lora": False}),
}


def adapter_vs_merged(args: argparse.Namespace, tmp: Path) -> dict:
    """Each of ``--configs`` on its own vLLM in turn, the same prompts at each level in flight;
    every adapter configuration's tokens/s over each merged one's."""
    from serving.adapters import adapter_rank
    from serving.client import ModelClient
    from serving.embedded import merged_model
    from serving.process import free_port
    from serving.vllm import Adapter, VllmConfig, VllmServer

    base = base_model(args)
    adapter = Path(args.adapter) if args.adapter else random_adapter(base, tmp / "lora-r16")
    rank = adapter_rank(adapter) or 16
    merged = merged_model(base, adapter, tmp / "merged-model")
    levels = [int(x) for x in args.levels.split(",")]
    out: dict = {"max_tokens": args.max_tokens, "adapter_rank": rank, "configs": {}}
    for label in args.configs.split(","):
        serves, extra = CONFIGS[label]
        adapters = [Adapter("threadtune/v1", adapter)] if serves == "adapter" else []
        cfg = VllmConfig(base if serves == "adapter" else merged, adapters=adapters, port=free_port(),
                         max_lora_rank=rank, **extra)
        server = VllmServer.spawn_config(cfg, log_path=tmp / f"{label}.log")
        t = time.perf_counter()
        server.start()
        print(f"{label}: up in {time.perf_counter() - t:.0f} s", flush=True)
        try:
            client = ModelClient(server.base_url, server.model, timeout=900, max_retries=0)
            run(client, server.model, 4, 4, 4)  # warm-up
            out["configs"][label] = {}
            for c in levels:
                out["configs"][label][str(c)] = run(client, server.model, max(args.requests, c), c, args.max_tokens)
                print(f"{label} {c} in flight: {out['configs'][label][str(c)]}", flush=True)
            client.close()
        finally:
            server.stop()
    figures = out["configs"]
    for a in (k for k in figures if CONFIGS[k][0] == "adapter"):
        for m in (k for k in figures if CONFIGS[k][0] == "merged"):
            for c in map(str, levels):
                out[f"{a}_vs_{m}_{c}"] = round(figures[a][c]["tokens_per_s"]
                                               / max(figures[m][c]["tokens_per_s"], 1e-9), 3)
    out["goal_adapter_vs_merged"] = 0.85
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="HF model folder (default: the embedded SmolLM2, converted once)")
    p.add_argument("--models-dir", type=Path, default=Path.home() / ".threadtune" / "models")
    p.add_argument("--backends", default="embedded,vllm")
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--continuous-batching", action="store_true",
                   help="embedded: transformers serve --continuous-batching (off in the product by default)")
    p.add_argument("--adapter-vs-merged", action="store_true", help="vLLM: LoRA adapter vs merged model")
    p.add_argument("--adapter", help="a LoRA adapter folder (default: a random rank-16 one)")
    p.add_argument("--levels", default="8,32", help="requests in flight for --adapter-vs-merged")
    p.add_argument("--configs", default="adapter,merged",
                   help=f"--adapter-vs-merged: vLLM configurations to compare, of {', '.join(CONFIGS)}")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = adapter_vs_merged(args, Path(tmp)) if args.adapter_vs_merged else backends(args, Path(tmp))
    for key, value in {**result.get("configs", {}), **{k: v for k, v in result.items() if k != "configs"}}.items():
        if isinstance(value, dict):
            for mode, figures in value.items():
                print(f"{key:>9} {mode:>10}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
        else:
            print(f"{key}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
