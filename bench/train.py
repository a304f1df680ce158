"""Training benchmarks. The last line printed is JSON.

    python bench/train.py                  # CPU: padded batches vs packing/padding-free, same data
    python bench/train.py --levers         # CPU: cpu-small before #17 vs each lever alone, in lockstep
    python bench/train.py --adopted        # CPU: cpu-small before #17 vs as adopted, in lockstep
    python bench/train.py --gpu            # CUDA: random-init Qwen2.5-0.5B/1.5B shapes, tokens/s + MFU
    python bench/train.py --acceptance     # 60 real FAQ pairs, cpu-small, eval on paraphrases
    python bench/train.py --demo-train     # the demo's training step (40 steps on its dataset)

Default mode: SmolLM2 (the embedded model) trains on the CPU on pairs of very uneven length, once
with padded batches and once with TRL's best-fit packing without padding, same data, same steps.
It reports useful (non-pad) tokens/s of both, their ratio, and the padding waste of each.

The CPU modes run their variants in lockstep (one child process each, one optimizer step each in
turn), leave ``--warmup`` steps out, measure ``--steps`` and repeat ``--repeats`` times: median and
spread (min–max), with the CPU's flags, thread settings and the load average.

``--acceptance`` is the issue's acceptance run: 60 pairs from ../shared/data/datatalksclub-faq
(answers of 60–320 characters, file order), trained with cpu-small through the real worker, then
base / base+retrieval / bot-base / tuned / tuned+retrieval / bot scored on the 60 paraphrased
questions (one per pair) in tests/training/data/faq-paraphrases.jsonl. Goal: tuned beats base by
≥ 0.10 token F1. ``--demo-train`` times the demo's training step the same way. With
``--old-vs-new`` either runs twice, with the adopted settings and then with those of before issue
#17 (bench/train_e2e.py); ``--gpu`` is bench/train_gpu.py.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.faq_store import OOD, acceptance_pairs as faq_pairs  # noqa: E402
from bench.train_e2e import SYSTEM, acceptance_run, bench_lock, demo_train_run, old_vs_new  # noqa: E402
from bench.train_gpu import H100_BF16_PEAK, bench_gpu, flops_per_token  # noqa: E402,F401

PARAPHRASES = ROOT / "tests" / "training" / "data" / "faq-paraphrases.jsonl"


def uneven_rows(n: int, seed: int = 0) -> list[dict]:
    """Chat rows whose answers range from a few words to a few hundred tokens (long-tailed)."""
    rng = random.Random(seed)
    words = ("restart the service then check the logs for errors and retry with a fresh token "
             "docker compose up rebuilds the image when the cache is stale").split()
    rows = []
    for i in range(n):
        length = int(min(400, 4 + rng.paretovariate(1.2) * 12))
        answer = " ".join(rng.choice(words) for _ in range(length))
        rows.append({"messages": [{"role": "user", "content": f"Question {i}: how do I fix issue {i}?"},
                                  {"role": "assistant", "content": answer}]})
    return rows


def padding_waste(lengths: list[int], batch_size: int, max_length: int, seed: int) -> float:
    """Share of pad positions when ``lengths`` are batched in shuffled order and padded per batch."""
    rng = random.Random(seed)
    order = lengths[:]
    rng.shuffle(order)
    pads = total = 0
    for k in range(0, len(order), batch_size):
        batch = [min(x, max_length) for x in order[k:k + batch_size]]
        total += max(batch) * len(batch)
        pads += sum(max(batch) - x for x in batch)
    return pads / total if total else 0.0


#: ``cpu-small`` as it was before issue #17, spelled out so that it stays comparable: fp32,
#: rows of 512 tokens in batches of 2, LoRA on every linear layer, and OpenMP's own wait policy
#: (``GOMP_SPINCOUNT=300000`` is libgomp's default when OMP_WAIT_POLICY is unset; set, it also
#: keeps the training child's passive default off when the run goes through the worker).
TODAY = {"overrides": {"bf16": False, "frozen_bf16": False, "answer_only_head": False, "packed_attention": False,
                       "pad_rows_to": None,
                       "torch_compile": False, "max_length": 512, "per_device_batch_size": 2,
                       "target_modules": "all-linear"}, "env": {"GOMP_SPINCOUNT": "300000"}}
#: ``cpu-small`` as adopted: the preset itself, with the training child's thread defaults.
ADOPTED = {"overrides": {}, "env": "defaults"}
#: Levers that cut work rather than speed it up, on top of the adopted preset: LoRA only on the
#: top layers of SmolLM2-135M's 30, so that the backward pass stops halfway or a third of the way up
#: (and the top half at twice the preset's base learning rate, 5e-4).
ON_ADOPTED = {
    "adopted-top-half": {"overrides": {"lora_top_layers": 15}, "env": "defaults"},
    "adopted-top-20": {"overrides": {"lora_top_layers": 20}, "env": "defaults"},
    # fewer adapted layers learn slower per step: can twice the rate make up for it?
    "adopted-top-half-2x-lr": {"overrides": {"lora_top_layers": 15, "base_learning_rate": 1e-3}, "env": "defaults"},
    # its comparator at the same rate: every layer adapted (the rate alone, not a work cut)
    "adopted-2x-lr": {"overrides": {"base_learning_rate": 1e-3}, "env": "defaults"},
}


def lever(overrides: dict | None = None, env: dict | None = None) -> dict:
    """TODAY with one thing changed (``env``, when given, replaces TODAY's thread settings)."""
    return {"overrides": {**TODAY["overrides"], **(overrides or {})}, "env": TODAY["env"] if env is None else env}


#: Each lever of issue #17 alone against TODAY, same data and seed.
LEVERS = {
    "today-fp32": TODAY,
    "bf16-autocast": lever({"bf16": True}),
    "torch-compile": lever({"torch_compile": True}),
    "omp-passive": lever(env={"OMP_WAIT_POLICY": "PASSIVE"}),
    "1-thread": lever(env={**TODAY["env"], "OMP_NUM_THREADS": "1"}),
    "rows-256x4": lever({"max_length": 256, "per_device_batch_size": 4}),
    "rows-1024x1": lever({"max_length": 1024, "per_device_batch_size": 1}),
    "lora-attention": lever({"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}),
    # the second round (this session's profile of a step): work the old preset did for nothing
    "bf16-weights": lever({"bf16": True, "frozen_bf16": True}),
    "answer-only-head": lever({"answer_only_head": True}),
    "packed-attention": lever({"packed_attention": True}),
}


def median(values: list[float]) -> float:
    """The middle value (mean of the two middle ones for an even count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summarize(repeats: list[list[dict]], warmup: int) -> dict:
    """One variant's repeats (each a list of per-step ``{"wall", "cpu", "tokens"}``) → useful tokens/s
    and CPU-seconds per 1k tokens per repeat, their median and spread (min–max). Warm-up steps are
    left out; their time is reported apart."""
    tps, cpu_per_k, step_s, warm_s = [], [], [], []
    for steps in repeats:
        measured = steps[warmup:]
        if not measured:
            raise ValueError(f"no measured steps: {len(steps)} steps, {warmup} of them warm-up")
        wall = sum(s["wall"] for s in measured)
        tokens = sum(s["tokens"] for s in measured)
        tps.append(tokens / wall)
        cpu_per_k.append(1000 * sum(s["cpu"] for s in measured) / tokens)
        step_s.extend(s["wall"] for s in measured)
        warm_s.append(sum(s["wall"] for s in steps[:warmup]))
    return {"useful_tokens_per_s": round(median(tps), 1), "spread": [round(min(tps), 1), round(max(tps), 1)],
            "cpu_s_per_1k_tokens": round(median(cpu_per_k), 2), "step_s_median": round(median(step_s), 2),
            "warmup_s": round(median(warm_s), 1), "repeats": len(repeats), "measured_steps": len(step_s)}


def final_loss(losses: list[float], last: int = 5) -> float:
    """Mean loss of the last ``last`` steps (one step's batch is too few examples to compare runs)."""
    tail = losses[-last:]
    return sum(tail) / len(tail)


def variant_env(variant: dict) -> dict[str, str]:
    """The environment of a variant's child: ours without thread settings, plus the variant's."""
    from training.hardware import THREAD_VARIABLES, with_thread_defaults

    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return with_thread_defaults(env) if variant["env"] == "defaults" else {**env, **variant["env"]}


def run_child(spec: dict) -> None:
    """One variant in its own process: train, and hand each step to the parent to start (lockstep)."""
    import resource

    from transformers import TrainerCallback

    from training.config import resolve_config
    from training.sft import RunSpec, train

    def cpu_now() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    class Lockstep(TrainerCallback):
        waited = 0.0  # seconds spent waiting for our turn: not part of this variant's run time

        def on_step_begin(self, args, state, control, **kwargs):
            print("@@ready", flush=True)
            t = time.perf_counter()
            if sys.stdin.readline().strip() != "go":
                raise SystemExit(0)
            self.waited += time.perf_counter() - t
            self.t0, self.c0, self.n0 = time.perf_counter(), cpu_now(), state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kwargs):
            step = {"wall": time.perf_counter() - self.t0, "cpu": cpu_now() - self.c0,
                    "tokens": state.num_input_tokens_seen - self.n0}
            print("@@step " + json.dumps(step), flush=True)

    t0 = time.perf_counter()
    cfg = resolve_config("cpu-small", spec["n_pairs"], {**spec["overrides"], "save_steps": 10_000})
    losses: list[float] = []
    turns = Lockstep()
    res = train(RunSpec(cfg, spec["base"], spec["train_file"], spec["out"], {"bench": spec["name"]}),
                report=lambda p: losses.append(p["loss"]), callbacks=[turns])
    # start-up (imports, model load, tokenizing, packing) + every step + saving the adapter
    total = time.perf_counter() - t0 - turns.waited
    print("@@done " + json.dumps({**res, "losses": losses, "total_s": total}), flush=True)


def lockstep(variants: dict[str, dict], spec: dict, steps: int, tmp: Path) -> dict[str, dict]:
    """Start one child per variant and let them take turns, one optimizer step each (A B C A B C …),
    so that every variant's steps meet the same machine load. Returns each child's steps and result."""
    import subprocess

    procs = {}
    for name, variant in variants.items():
        child = {**spec, "name": name, "overrides": {**variant["overrides"], "max_steps": steps},
                 "out": str(tmp / name)}
        procs[name] = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(child)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                       env=variant_env(variant), stderr=open(tmp / f"{name}.log", "w"))
    out = {name: {"steps": [], "result": None} for name in variants}

    def read_until(name: str, *prefixes: str) -> str:
        for line in procs[name].stdout:
            if line.startswith(prefixes):
                return line
        tail = (tmp / f"{name}.log").read_text()[-2000:]
        raise SystemExit(f"bench child {name} ended early (exit {procs[name].wait()}):\n{tail}")

    try:
        take_turns(procs, out, read_until)
    finally:  # a child that failed (or an OOM kill) ends the run: leave no orphans behind
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return out


def take_turns(procs: dict, out: dict, read_until: Callable[..., str]) -> None:
    """Give each live child one step in turn until all are done."""
    live = list(procs)
    while live:
        for name in list(live):
            line = read_until(name, "@@ready", "@@done")
            if line.startswith("@@done"):
                out[name]["result"] = json.loads(line[len("@@done "):])
                live.remove(name)
                continue
            procs[name].stdin.write("go\n")
            procs[name].stdin.flush()
            out[name]["steps"].append(json.loads(read_until(name, "@@step")[len("@@step "):]))
            print(f"  {name} step {len(out[name]['steps'])}: {out[name]['steps'][-1]}", file=sys.stderr, flush=True)


def bench_rows(kind: str) -> tuple[list[dict], int]:
    """Training rows for the CPU modes and their number of pairs: ``uneven`` (96 synthetic pairs,
    long-tailed lengths) or ``faq`` (the 60 acceptance pairs with their question forms)."""
    if kind == "uneven":
        rows = uneven_rows(96)
        return rows, len(rows)
    from training.augment import augment_rows
    from training.data import to_messages

    pairs = faq_pairs(60)
    return augment_rows([to_messages(p["question"], p["answer"], SYSTEM) for p in pairs]), len(pairs)


def compare(args: argparse.Namespace, variants: dict[str, dict], baseline: str) -> dict:
    """Run ``variants`` in lockstep ``args.repeats`` times; medians, spreads, ratios to ``baseline``."""
    from transformers import AutoTokenizer

    from serving.models import resolve
    from curation.datasets import write_jsonl
    from training.hardware import describe_cpu

    base = args.model or str(resolve("embedded", Path(args.models_dir)).path)
    rows, n_pairs = bench_rows(args.data)
    tok = AutoTokenizer.from_pretrained(base)
    lengths = [len(tok(tok.apply_chat_template(r["messages"], tokenize=False), add_special_tokens=False)
                   ["input_ids"]) for r in rows]
    load = []  # [before, after] each repeat
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(rows, Path(tmp) / "train.jsonl")
        spec = {"base": base, "train_file": str(Path(tmp) / "train.jsonl"), "n_pairs": n_pairs}
        for r in range(args.repeats):
            (Path(tmp) / f"r{r}").mkdir()
            with bench_lock(args.lock):  # per repeat: each repeat's variants meet the same load anyway
                before = os.getloadavg()[0]
                done = lockstep(variants, spec, args.warmup + args.steps, Path(tmp) / f"r{r}")
                load.append([round(before, 2), round(os.getloadavg()[0], 2)])
            for name, run in done.items():
                runs[name].append(run)
                print(f"repeat {r + 1}/{args.repeats} {name}: "
                      + json.dumps({**summarize([run["steps"]], args.warmup),
                                    "final_loss": round(final_loss(run["result"]["losses"]), 4)}), flush=True)
    report = {}
    for name, repeats in runs.items():
        report[name] = summarize([run["steps"] for run in repeats], args.warmup)
        last = [run["result"] for run in repeats]
        report[name].update({
            "precision": last[0]["precision"], "threads": last[0]["threads"],
            "final_loss": round(median([final_loss(res["losses"]) for res in last]), 4),
            "train_loss": round(median([res["train_loss"] for res in last]), 4),
            "end_to_end_s": round(median([res["total_s"] for res in last]), 1)})
    per_repeat = {name: [summarize([run["steps"]], args.warmup)["useful_tokens_per_s"] for run in repeats]
                  for name, repeats in runs.items()}
    for name in report:
        report[name]["ratio"] = round(report[name]["useful_tokens_per_s"]
                                      / report[baseline]["useful_tokens_per_s"], 3)
        # within each repeat both sides met the same load: the spread of those ratios
        ratios = [a / b for a, b in zip(per_repeat[name], per_repeat[baseline])]
        report[name]["ratio_spread"] = [round(min(ratios), 3), round(max(ratios), 3)]
    return {"machine": describe_cpu(), "load_avg": load, "model": Path(base).name,
            "data": args.data, "rows": len(rows), "length_min": min(lengths),
            "length_median": sorted(lengths)[len(lengths) // 2], "length_max": max(lengths),
            "warmup_steps": args.warmup, "measured_steps": args.steps, "repeats": args.repeats,
            "baseline": baseline, "variants": report, "lengths": lengths}


def bench_cpu(args: argparse.Namespace) -> dict:
    """Padded vs packed (padding-free), cpu-small as adopted, in lockstep."""
    padded = {"overrides": {"packing": False, "per_device_batch_size": args.batch, "max_length": args.max_length},
              "env": "defaults"}
    packed = {**padded, "overrides": {**padded["overrides"], "packing": True}}
    out = compare(args, {"padded": padded, "packed": packed}, baseline="padded")
    lengths = out.pop("lengths")
    out["variants"]["padded"]["padding_waste"] = round(padding_waste(lengths, args.batch, args.max_length, 42), 4)
    out["variants"]["packed"]["padding_waste"] = 0.0  # padding-free: rows are flattened, no pad positions
    return {"bench": "train-cpu", **out, "ratio": out["variants"]["packed"]["ratio"], "goal_ratio": 1.3,
            "goal_waste": 0.05}


def bench_levers(args: argparse.Namespace) -> dict:
    """Today's cpu-small against each lever alone (``--only`` picks some), and the adopted preset."""
    every = {**LEVERS, "adopted": ADOPTED, **ON_ADOPTED}
    chosen = {k: v for k, v in every.items() if not args.only or k in args.only}
    unknown = set(args.only or ()) - set(chosen)
    if unknown or not chosen:
        raise SystemExit(f"--only: unknown lever(s) {', '.join(sorted(unknown))}; choose from {', '.join(every)}")
    out = compare(args, chosen, baseline="today-fp32" if "today-fp32" in chosen else next(iter(chosen)))
    out.pop("lengths")
    return {"bench": "train-cpu-levers", **out}


def bench_adopted(args: argparse.Namespace) -> dict:
    """Today's cpu-small vs the adopted one over a whole schedule: time and final loss (parity)."""
    out = compare(args, {"today-fp32": TODAY, "adopted": ADOPTED}, baseline="today-fp32")
    out.pop("lengths")
    today, adopted = out["variants"]["today-fp32"], out["variants"]["adopted"]
    return {"bench": "train-cpu-adopted", **out,
            "time_ratio": round(adopted["end_to_end_s"] / today["end_to_end_s"], 3),
            "loss_gap": round(adopted["final_loss"] / today["final_loss"] - 1, 4), "goal_loss_gap": 0.02}


def bench_acceptance(args: argparse.Namespace) -> dict:
    """The acceptance run with the adopted settings (all systems scored) and, with ``--old-vs-new``,
    then with today's (the tuned system only: the base ones do not depend on training)."""
    runs = {"new": acceptance_run("new", ADOPTED["overrides"], variant_env(ADOPTED), args, None,
                                  Path(args.ood) if args.ood else None)}
    if args.old_vs_new:
        runs["old"] = acceptance_run("old", TODAY["overrides"], variant_env(TODAY), args, ("tuned",), None)
    new = runs["new"]["systems"]
    out = {"bench": "train-acceptance", "pairs": args.pairs, "questions": Path(args.questions).name,
           "eval_questions": runs["new"]["eval_questions"],
           "tuned_minus_base_f1": round(new["tuned"]["token_f1"] - new["base"]["token_f1"], 4), "goal": 0.10,
           "runs": {label: {k: v for k, v in run.items() if k != "systems"} for label, run in runs.items()},
           "systems": new}
    if args.old_vs_new:
        old_f1 = runs["old"]["systems"]["tuned"]["token_f1"]
        out.update(old_vs_new(runs), tuned_f1={"new": new["tuned"]["token_f1"], "old": old_f1},
                   tuned_f1_not_lower=new["tuned"]["token_f1"] >= old_f1)
    return out


def bench_demo_train(args: argparse.Namespace) -> dict:
    """The demo's training step with the adopted settings and, with ``--old-vs-new``, today's."""
    runs = {"new": demo_train_run("new", ADOPTED["overrides"], variant_env(ADOPTED), args)}
    if args.old_vs_new:
        runs["old"] = demo_train_run("old", TODAY["overrides"], variant_env(TODAY), args)
    out = {"bench": "train-demo", "runs": runs}
    return {**out, **old_vs_new(runs)} if args.old_vs_new else out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="GPU mode: Qwen2.5 shapes, tokens/s and MFU")
    parser.add_argument("--levers", action="store_true", help="CPU: today's cpu-small vs each lever alone")
    parser.add_argument("--adopted", action="store_true",
                        help="CPU: today's cpu-small vs the adopted one, a whole schedule: time and loss")
    parser.add_argument("--acceptance", action="store_true", help="the 60-pair acceptance run")
    parser.add_argument("--demo-train", action="store_true", help="the demo's training step, timed")
    parser.add_argument("--old-vs-new", action="store_true",
                        help="--acceptance, --demo-train: run with the adopted settings, then with those "
                        "of before issue #17, and compare time, loss and (acceptance) tuned token F1")
    parser.add_argument("--lock", help="hold an exclusive flock on this file (e.g. /work/bench.lock) during "
                        "each timed run of --acceptance and --demo-train, and each repeat of the CPU modes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--only", type=lambda s: s.split(","), help="--levers: these levers (comma-separated)")
    parser.add_argument("--data", choices=("uneven", "faq"), default="uneven",
                        help="CPU modes: 96 synthetic uneven pairs, or the 60 FAQ pairs with question forms")
    parser.add_argument("--model", help="base model folder (default: the embedded SmolLM2)")
    parser.add_argument("--models-dir", default=str(Path.home() / ".threadtune" / "models"))
    parser.add_argument("--rows", type=int, default=96, help="training rows (--gpu)")
    parser.add_argument("--steps", type=int, help="measured optimizer steps per mode and repeat "
                        "(default 20 on the CPU, 3 --gpu)")
    parser.add_argument("--warmup", type=int, default=2, help="CPU: steps run first and not measured")
    parser.add_argument("--repeats", type=int, default=3, help="CPU: runs of each mode, in lockstep")
    parser.add_argument("--batch", type=int, default=4, help="sequences (or packed rows) per batch (CPU)")
    parser.add_argument("--gpu-batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, help="row length in tokens (default 256 on CPU, 2048 --gpu)")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_PEAK / 1e12)
    parser.add_argument("--tokenizer", help="tokenizer folder for --gpu (default: SmolLM2's)")
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--data-dir", help="--acceptance, --demo-train: keep each run's store and reports "
                        "here, in new/ and old/ (default: a new temporary folder)")
    parser.add_argument("--overrides", help="JSON TrainConfig overrides for --acceptance (both runs)")
    parser.add_argument("--questions", default=str(PARAPHRASES),
                        help="--acceptance: held-out questions ({source_id, question} JSONL), e.g. "
                        "tests/training/data/faq-rephrasings.jsonl")
    parser.add_argument("--ood", help="--acceptance: out-of-domain questions for the bot system, e.g. "
                        f"{OOD.relative_to(ROOT)}")
    parser.add_argument("--eval-batch", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()
    if args.child:
        run_child(json.loads(args.child))
        return
    if args.max_length is None:
        args.max_length = 2048 if args.gpu else 256
    if args.steps is None:
        args.steps = 3 if args.gpu else 20
    if (args.acceptance or args.demo_train) and not args.data_dir:
        args.data_dir = tempfile.mkdtemp(prefix="tt-bench-train-")
    if args.acceptance:
        result = bench_acceptance(args)
    elif args.demo_train:
        result = bench_demo_train(args)
    elif args.gpu:
        result = bench_gpu(args, uneven_rows(args.rows * 4, seed=1))
    elif args.levers:
        result = bench_levers(args)
    elif args.adopted:
        result = bench_adopted(args)
    else:
        result = bench_cpu(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
