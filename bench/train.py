"""Training benchmarks. The last line printed is JSON.

    python bench/train.py                  # CPU: padded batches vs packing/padding-free, same data
    python bench/train.py --gpu            # CUDA: random-init Qwen2.5-0.5B/1.5B shapes, tokens/s + MFU
    python bench/train.py --acceptance     # 60 real FAQ pairs, cpu-small, eval on paraphrases

Default mode: SmolLM2 (the embedded model) trains on the CPU on pairs of very uneven length, once
with padded batches and once with TRL's best-fit packing without padding, same data, same steps.
It reports useful (non-pad) tokens/s of both, their ratio, and the padding waste of each.

``--gpu`` builds Qwen2.5-0.5B and 1.5B shaped models with random weights (no download), trains LoRA
in bf16 with the gpu-lora preset, and reports tokens/s and MFU against the GPU's bf16 peak
(989 TFLOP/s on an H100 SXM). Model FLOPs per token = 2N forward + 2N backward through the frozen
weights + 2·N_lora for the adapter weight gradients + attention (6·L·s·d·… see ``flops_per_token``);
gradient-checkpoint recomputation is not counted, as is usual for MFU.

``--acceptance`` is the issue's acceptance run: 60 pairs from ../shared/data/datatalksclub-faq
(answers of 60–320 characters, file order), trained with cpu-small through the real worker, then
base / base+retrieval / tuned / tuned+retrieval scored on the 60 paraphrased questions (one per pair) in
tests/training/data/faq-paraphrases.jsonl. Goal: tuned beats base by ≥ 0.10 token F1.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FAQ = ROOT.parent / "shared" / "data" / "datatalksclub-faq" / "faq-de-ml.jsonl"
PARAPHRASES = ROOT / "tests" / "training" / "data" / "faq-paraphrases.jsonl"
TEAM = "T0BENCH"
H100_BF16_PEAK = 989e12


def faq_pairs(n: int = 60) -> list[dict]:
    """The acceptance selection: unique ids, answers of 60–320 chars without images or code fences."""
    seen, out = set(), []
    for line in FAQ.read_text().splitlines():
        row = json.loads(line)
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        if 60 <= len(row["answer"]) <= 320 and "![" not in row["answer"] and "```" not in row["answer"]:
            out.append(row)
    return out[:n]


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


def bench_cpu(args: argparse.Namespace) -> dict:
    """Padded vs packed (padding-free) on the embedded SmolLM2, CPU."""
    from transformers import AutoTokenizer

    from serving.models import resolve
    from training.config import resolve_config
    from curation.datasets import write_jsonl
    from training.sft import RunSpec, train

    base = args.model or str(resolve("embedded", Path(args.models_dir)).path)
    rows = uneven_rows(args.rows)
    tok = AutoTokenizer.from_pretrained(base)
    lengths = [len(tok(tok.apply_chat_template(r["messages"], tokenize=False), add_special_tokens=False)
                   ["input_ids"]) for r in rows]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(rows, Path(tmp) / "train.jsonl")
        for mode, packing in (("padded", False), ("packed", True)):
            cfg = resolve_config("cpu-small", len(rows), {
                "packing": packing, "max_steps": args.steps, "per_device_batch_size": args.batch,
                "max_length": args.max_length, "save_steps": 10_000, "warmup_ratio": 0.0})
            out = Path(tmp) / mode
            res = train(RunSpec(cfg, base, str(Path(tmp) / "train.jsonl"), str(out), {"bench": mode}))
            # useful tokens: the packed run counts all (there are no pads); the padded run counts
            # attention_mask ones only
            results[mode] = {"useful_tokens": res["tokens_seen"], "seconds": res["seconds"],
                             "useful_tokens_per_s": round(res["tokens_seen"] / res["seconds"], 1),
                             "steps": res["steps"]}
            print(f"{mode}: {results[mode]}", flush=True)
    results["padded"]["padding_waste"] = round(padding_waste(lengths, args.batch, args.max_length, 42), 4)
    results["packed"]["padding_waste"] = 0.0  # padding-free: rows are flattened, no pad positions
    ratio = results["packed"]["useful_tokens_per_s"] / results["padded"]["useful_tokens_per_s"]
    return {"bench": "train-cpu", "model": Path(base).name, "rows": len(rows),
            "length_min": min(lengths), "length_median": sorted(lengths)[len(lengths) // 2],
            "length_max": max(lengths), "padded": results["padded"], "packed": results["packed"],
            "ratio": round(ratio, 3), "goal_ratio": 1.3, "goal_waste": 0.05}


QWEN_SHAPES = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                         tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                         tie_word_embeddings=True),
}


def flops_per_token(n_params: int, n_lora: int, layers: int, hidden: int, seq: int) -> float:
    """Training FLOPs per token of LoRA: frozen weights need forward (2N) and input gradients (2N),
    adapters also weight gradients (2·N_lora); causal attention adds 2·2·L·s·d forward, ×3 with
    backward, halved for the causal mask."""
    attention = 3 * 2 * 2 * layers * seq * hidden / 2
    return 4 * n_params + 6 * n_lora + attention


def bench_gpu(args: argparse.Namespace) -> dict:
    """Random-init Qwen2.5 shapes, bf16 LoRA with the gpu-lora preset, tokens/s and MFU."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from serving.models import resolve
    from training.config import resolve_config
    from curation.datasets import write_jsonl
    from training.sft import RunSpec, train

    if not torch.cuda.is_available():
        raise SystemExit("--gpu needs CUDA")
    peak = args.peak_tflops * 1e12
    tok_src = args.tokenizer or str(resolve("embedded", Path(args.models_dir)).path)
    out: dict = {"bench": "train-gpu", "device": torch.cuda.get_device_name(0), "peak_tflops": args.peak_tflops,
                 "models": {}}
    rows = uneven_rows(args.rows * 4, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(rows, Path(tmp) / "train.jsonl")
        for name, shape in QWEN_SHAPES.items():
            folder = Path(tmp) / name
            tok = AutoTokenizer.from_pretrained(tok_src)
            config = Qwen2Config(**shape, max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            torch.manual_seed(0)
            model = Qwen2ForCausalLM(config).to(torch.bfloat16)
            n_params = sum(p.numel() for p in model.parameters())  # tied: lm_head counted once
            model.save_pretrained(folder)
            tok.save_pretrained(folder)
            del model
            cfg = resolve_config("gpu-lora", len(rows), {
                "max_steps": args.steps, "max_length": args.max_length, "save_steps": 10_000,
                "per_device_batch_size": args.gpu_batch, "warmup_ratio": 0.0})
            res = train(RunSpec(cfg, str(folder), str(Path(tmp) / "train.jsonl"), str(folder / "run"),
                                {"bench": name}))
            n_lora = 2 * cfg.lora_r * (shape["num_hidden_layers"] * (
                4 * shape["hidden_size"] + 3 * (shape["hidden_size"] + shape["intermediate_size"])))
            tps = res["tokens_seen"] / res["seconds"]
            fpt = flops_per_token(n_params, n_lora, shape["num_hidden_layers"], shape["hidden_size"],
                                  args.max_length)
            out["models"][name] = {"tokens_per_s": round(tps, 1), "mfu": round(tps * fpt / peak, 4),
                                   "params": n_params, "steps": res["steps"]}
            print(f"{name}: {out['models'][name]}", flush=True)
            torch.cuda.empty_cache()
    out["goal_mfu_1.5b"] = 0.35
    return out


def bench_acceptance(args: argparse.Namespace) -> dict:
    """Train cpu-small on 60 FAQ pairs through the worker; evaluate on the paraphrases."""
    from curation.store import connect, now, transaction
    from training import worker
    from training.evaluate import markdown_table
    from training.notify import TerminalNotifier
    from training.pipeline import evaluate_model, plan_train, queue_train

    pairs = faq_pairs(args.pairs)
    by_id = {p["id"]: p for p in pairs}
    paraphrases = [json.loads(line) for line in Path(args.questions).read_text().splitlines() if line.strip()]
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="tt-accept-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    db = connect(data_dir / "threadtune.db")
    system = "You are the DataTalksClub course assistant. Answer briefly and precisely."
    with transaction(db):
        db["datasets"].insert({"id": "faq60", "team_id": TEAM, "version": 1, "name": "v1",
                               "system_prompt": system, "n_train": len(pairs), "n_eval": len(paraphrases),
                               "meta": "{}", "created_by": "bench", "created_at": now()})
        for p in pairs:
            cid = db["candidates"].insert({"team_id": TEAM, "question": p["question"], "answer": p["answer"],
                                           "status": "approved", "origin": "import", "dedup_key": p["id"],
                                           "created_at": now()}).last_pk
            db["dataset_items"].insert({"dataset_id": "faq60", "team_id": TEAM, "candidate_id": cid,
                                        "split": "train", "kind": "pair", "question": p["question"],
                                        "answer": p["answer"]})
        for q in paraphrases:
            db["dataset_items"].insert({"dataset_id": "faq60", "team_id": TEAM, "candidate_id": None,
                                        "split": "eval", "kind": "variant", "question": q["question"],
                                        "answer": by_id[q["source_id"]]["answer"]})
    overrides = json.loads(args.overrides) if args.overrides else {}
    plan = plan_train(db, TEAM, dataset="v1", preset="cpu-small", overrides=overrides,
                      base_model=args.model or "embedded", models_dir=Path(args.models_dir))
    job_id = queue_train(db, TEAM, plan, created_by="bench")
    t0 = time.monotonic()
    job = worker.run_one(db, worker.WorkerContext(data_dir=data_dir, models_dir=Path(args.models_dir),
                                                  notifier_for=lambda j: TerminalNotifier()))
    train_s = time.monotonic() - t0
    if job is None or job["status"] != "done":
        raise SystemExit(f"training failed: {job and job['error']}")
    t0 = time.monotonic()
    report = evaluate_model(db, TEAM, "latest", out_dir=data_dir / "reports", batch_size=args.eval_batch,
                            max_new_tokens=args.max_new_tokens, ood_file=Path(args.ood) if args.ood else None)
    eval_s = time.monotonic() - t0
    print(markdown_table(report))
    for ex in report["examples"][:3]:
        print(json.dumps(ex, ensure_ascii=False, indent=1))
    gain = report["systems"]["tuned"]["token_f1"] - report["systems"]["base"]["token_f1"]
    return {"bench": "train-acceptance", "job": job_id, "pairs": len(pairs), "eval_questions": report["n"],
            "config": {k: plan.config.to_dict()[k] for k in ("epochs", "learning_rate", "lora_r", "max_length",
                                                              "per_device_batch_size", "packing")},
            "train": {k: job["result"].get(k) for k in ("steps", "first_loss", "last_loss", "seconds")},
            "train_s": round(train_s, 1), "eval_s": round(eval_s, 1), "systems": report["systems"],
            "tuned_minus_base_f1": round(gain, 4), "goal": 0.10, "files": report["files"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="GPU mode: Qwen2.5 shapes, tokens/s and MFU")
    parser.add_argument("--acceptance", action="store_true", help="the 60-pair acceptance run")
    parser.add_argument("--model", help="base model folder (default: the embedded SmolLM2)")
    parser.add_argument("--models-dir", default=str(Path.home() / ".threadtune" / "models"))
    parser.add_argument("--rows", type=int, default=96, help="training rows (CPU mode)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per mode")
    parser.add_argument("--batch", type=int, default=4, help="sequences (or packed rows) per batch (CPU)")
    parser.add_argument("--gpu-batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, help="row length in tokens (default 256 on CPU, 2048 --gpu)")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_PEAK / 1e12)
    parser.add_argument("--tokenizer", help="tokenizer folder for --gpu (default: SmolLM2's)")
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--data-dir", help="keep the acceptance store and reports here")
    parser.add_argument("--overrides", help="JSON TrainConfig overrides for --acceptance")
    parser.add_argument("--questions", default=str(PARAPHRASES),
                        help="--acceptance: held-out questions ({source_id, question} JSONL), e.g. "
                        "tests/training/data/faq-rephrasings.jsonl")
    parser.add_argument("--ood", help="--acceptance: out-of-domain questions for the bot system, e.g. "
                        "tests/training/data/ood-questions.jsonl")
    parser.add_argument("--eval-batch", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()
    if args.max_length is None:
        args.max_length = 2048 if args.gpu else 256
    if args.acceptance:
        result = bench_acceptance(args)
    elif args.gpu:
        result = bench_gpu(args)
    else:
        result = bench_cpu(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
