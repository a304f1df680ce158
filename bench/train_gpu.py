"""bench/train.py ``--gpu``: random-init Qwen2.5-0.5B/1.5B shapes (no download), LoRA in bf16 with
the gpu-lora preset, tokens/s and MFU against the GPU's bf16 peak (989 TFLOP/s on an H100 SXM).

Model FLOPs per token = 2N forward + 2N backward through the frozen weights + 2·N_lora for the
adapter weight gradients + attention (see :func:`flops_per_token`); gradient-checkpoint
recomputation is not counted, as is usual for MFU.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

H100_BF16_PEAK = 989e12

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


def bench_gpu(args: argparse.Namespace, rows: list[dict]) -> dict:
    """Random-init Qwen2.5 shapes, bf16 LoRA with the gpu-lora preset on ``rows``, tokens/s and MFU."""
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
