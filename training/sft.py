"""LoRA SFT of one dataset version: a thin script over TRL's ``SFTTrainer`` and a PEFT ``LoraConfig``.

Run it as a script, the way the worker does in a child process::

    python -m training.sft --spec RUN_DIR/spec.json
    accelerate launch --num_processes 4 --mixed_precision bf16 -m training.sft --spec RUN_DIR/spec.json

``spec.json`` (written by :func:`write_spec`) names the resolved :class:`~training.config.TrainConfig`,
the base-model folder, the train file (TRL ``messages`` rows), the output folder and the lineage
(dataset version, base model spec). The script writes::

    RUN_DIR/checkpoints/checkpoint-N/   resumable Trainer checkpoints
    RUN_DIR/adapter/                    the LoRA adapter + tokenizer (what serving loads)
    RUN_DIR/adapter/run.json            resolved config, dataset version, base model, code version, results

Progress goes to stdout as ``@@progress {json}`` lines and a failure ends with ``@@error {json}``:
the worker reads them, so the child never touches the store.

Loss is on the assistant turns only: TRL's ``assistant_only_loss`` needs a chat template with
``{% generation %}`` markers, which SmolLM2's lacks, so ChatML models get :data:`CHATML_TRAINING_TEMPLATE`
(renders the same text, marks the answer and its ``<|im_end|>``). A template TRL cannot mark falls
back to conversational prompt/completion rows, whose loss TRL puts on the completion only.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from curation.errors import ConfigError
from training.config import TrainConfig
from training.hardware import apply_thread_defaults, use_bf16

PROGRESS_PREFIX = "@@progress "
ERROR_PREFIX = "@@error "
RESULT_PREFIX = "@@result "

#: SmolLM2's own template plus generation markers around each assistant answer and its end-of-turn.
CHATML_TRAINING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class RunSpec:
    """Everything one training run needs; serialised as ``spec.json`` for the child process."""

    config: TrainConfig
    base_model: str  # a local HF folder
    train_file: str  # JSONL of {"messages": [...]}
    output_dir: str
    lineage: dict[str, Any]  # dataset_id, dataset_name, base_model_spec, team_id, job_id …
    resume: bool = False


def write_spec(spec: RunSpec, path: Path) -> Path:
    """Write ``spec`` as JSON at ``path``."""
    data = {**spec.__dict__, "config": spec.config.to_dict()}
    path.write_text(json.dumps(data, indent=2))
    return path


def read_spec(path: Path) -> RunSpec:
    """Read a spec written by :func:`write_spec`."""
    data = json.loads(Path(path).read_text())
    data["config"] = TrainConfig(**data["config"])
    return RunSpec(**data)


def code_version() -> str:
    """threadtune's package version plus the git commit of the source tree, when there is one."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("threadtune")
    except PackageNotFoundError:
        __version__ = "0+unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "training"], cwd=Path(__file__).parent.parent,
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return f"{__version__}+g{sha}" + (".dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return __version__


def training_chat_template(tokenizer: Any) -> str | None:
    """A chat template with ``{% generation %}`` markers for ``tokenizer``, or None if none fits."""
    from trl.chat_template_utils import get_training_chat_template

    template = tokenizer.chat_template or ""
    if re.search(r"{%-?\s*generation\s*-?%}", template):
        return template
    if "<|im_start|>" in template:
        return CHATML_TRAINING_TEMPLATE
    try:
        return get_training_chat_template(tokenizer) or None
    except (ValueError, NotImplementedError, TypeError):
        return None


def to_prompt_completion(row: dict[str, Any]) -> dict[str, Any]:
    """A ``messages`` row as a conversational prompt/completion row (loss on the completion)."""
    return {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}


def top_layers(count: int | None, n_layers: int) -> list[int] | None:
    """The indexes of the top ``count`` of ``n_layers`` transformer layers (PEFT's
    ``layers_to_transform``), or None for every layer."""
    if count is None:
        return None
    if not 1 <= count <= n_layers:
        raise ConfigError(f"lora_top_layers={count}, but the base model has {n_layers} layers: "
                          f"choose 1 to {n_layers}, or null for every layer")
    return list(range(n_layers - count, n_layers))


def failure_reason(err: BaseException) -> str:
    """One line a user can act on for an exception that ended a run."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    name = type(err).__name__
    if isinstance(err, MemoryError) or "OutOfMemory" in name or "out of memory" in text.lower():
        return (f"out of memory ({text}); lower per_device_batch_size or max_length, or use the "
                "gpu-qlora preset")
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        where = f" writing {err.filename}" if getattr(err, "filename", None) else ""
        return f"disk full{where} ({os.strerror(err.errno)}); free space in the data dir and resume the job"
    return f"{name}: {text}"


def _emit(prefix: str, payload: dict[str, Any]) -> None:
    print(prefix + json.dumps(payload), flush=True)


def _progress_callback(report: Callable[[dict[str, Any]], None]):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Reports step/total, loss, tokens/s and ETA (main process only)."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.t0, self.step0, self.tokens0 = time.monotonic(), state.global_step, state.num_input_tokens_seen

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            elapsed = max(time.monotonic() - self.t0, 1e-6)
            done = state.global_step - self.step0
            eta = (state.max_steps - state.global_step) * elapsed / done if done else None
            report({
                "step": state.global_step, "total": state.max_steps, "epoch": round(state.epoch or 0, 3),
                "loss": round(float(logs["loss"]), 4),
                "tokens_per_s": round((state.num_input_tokens_seen - self.tokens0) / elapsed, 1),
                "eta_s": round(eta, 1) if eta is not None else None,
            })

    return Progress()


def latest_checkpoint(output_dir: Path) -> str | None:
    """The newest ``checkpoint-N`` folder under ``output_dir/checkpoints``, if any."""
    # A worker killed while the Trainer wrote a checkpoint leaves a folder without its
    # trainer_state.json (written last): resume from the newest *complete* one.
    folders = [p for p in (output_dir / "checkpoints").glob("checkpoint-*")
               if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return str(max(folders, key=lambda p: int(p.name.split("-")[-1]))) if folders else None


def train(spec: RunSpec, report: Callable[[dict[str, Any]], None] | None = None,
          callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Train one LoRA adapter as ``spec`` says; returns the results written into ``run.json``.

    ``callbacks`` are extra ``transformers.TrainerCallback`` objects (the benchmark times steps with one).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    from training.data import read_jsonl

    cfg = spec.config
    # checked before the model loads (its config is a small JSON file)
    layers = top_layers(cfg.lora_top_layers, AutoConfig.from_pretrained(spec.base_model).num_hidden_layers)
    out = Path(spec.output_dir)
    set_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(spec.base_model)
    rows = read_jsonl(Path(spec.train_file))
    template = training_chat_template(tokenizer)
    if template is not None:
        tokenizer.chat_template = template
        dataset = Dataset.from_list(rows)
    else:
        dataset = Dataset.from_list([to_prompt_completion(r) for r in rows])

    cuda = cfg.device == "cuda"
    bf16 = use_bf16(cfg.bf16, cfg.device)
    # On the CPU, bf16 is autocast: matrix products run in bf16 (AMX/AVX512-BF16). The frozen base is
    # stored in bf16 with frozen_bf16 (no cast at every use), in fp32 without; the LoRA weights and
    # their optimizer state stay fp32 either way (PEFT keeps the adapter in fp32).
    frozen_bf16 = bf16 and (cuda or cfg.frozen_bf16)
    model_kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if frozen_bf16 else torch.float32}
    if cfg.packed_attention:
        from training.packed_attention import register

        model_kwargs["attn_implementation"] = register()
    elif cfg.attn_implementation or cuda:
        model_kwargs["attn_implementation"] = cfg.attn_implementation or _best_attention()
    if cfg.load_in_4bit:
        from transformers import BitsAndBytesConfig

        model_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(spec.base_model, **model_kwargs)
    liger = cfg.use_liger_kernel
    if liger is None:
        import importlib.util

        liger = cuda and importlib.util.find_spec("liger_kernel") is not None

    args = SFTConfig(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=float(cfg.epochs or 1),
        max_steps=cfg.max_steps,
        learning_rate=float(cfg.learning_rate or cfg.base_learning_rate),
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        packing=cfg.packing,
        packing_strategy="bfd",
        assistant_only_loss=template is not None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        neftune_noise_alpha=cfg.neftune_noise_alpha,
        bf16=bf16,
        fp16=False,
        use_cpu=not cuda,
        gradient_checkpointing=cfg.gradient_checkpointing,
        use_liger_kernel=bool(liger),
        torch_compile=cfg.torch_compile,
        logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        include_num_input_tokens_seen="all" if cfg.packing else "non_padding",
    )
    targets = cfg.target_modules
    if layers is not None and targets == "all-linear":  # PEFT takes layer indexes with module names only
        output = model.get_output_embeddings()
        targets = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                          if isinstance(module, torch.nn.Linear) and module is not output})
    peft_config = LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=targets, task_type="CAUSAL_LM",
        # no adapter below the lowest adapted layer: nothing there needs a gradient, so the
        # backward pass ends there (embeddings and lower layers are frozen)
        layers_to_transform=layers,
    )
    if cfg.answer_only_head:
        from training.answer_loss import answer_loss_trainer

        SFTTrainer = answer_loss_trainer(SFTTrainer, cfg.pad_rows_to)  # noqa: N806 - TRL's class, extended
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    if report is not None:
        trainer.add_callback(_progress_callback(report))
    for callback in callbacks:
        trainer.add_callback(callback)
    resume = latest_checkpoint(out) if spec.resume else None
    t0 = time.monotonic()
    # Under autocast the LoRA layers need not cast their bf16 input to their fp32 weights' dtype
    # first (autocast casts the small LoRA weights instead): two copies of every activation saved.
    from peft.helpers import disable_input_dtype_casting

    with disable_input_dtype_casting(trainer.model, active=frozen_bf16 and not cuda):
        output = trainer.train(resume_from_checkpoint=resume)
    seconds = time.monotonic() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    results = {
        "train_loss": round(float(output.training_loss), 4),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "steps": trainer.state.global_step,
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "seconds": round(seconds, 2),
        "resumed_from": resume,
        "n_train": len(rows),
        "loss_on": "assistant" if template is not None else "completion",
        "precision": "bf16" if bf16 else "fp32",
        "base_weights": "bf16" if frozen_bf16 else "fp32",
        "threads": torch.get_num_threads(),
    }
    if trainer.is_world_process_zero():
        adapter = out / "adapter"
        trainer.save_model(str(adapter))
        tokenizer.save_pretrained(str(adapter))
        run = {"config": cfg.to_dict(), "base_model": spec.base_model, "lineage": spec.lineage,
               "code_version": code_version(), "results": results,
               "torch": torch.__version__, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (adapter / "run.json").write_text(json.dumps(run, indent=2))
        results["adapter_path"] = str(adapter)
    return results


def _best_attention() -> str:
    import importlib.util

    return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"


def accelerate_command(spec_path: Path, config: TrainConfig, *, python: str | None = None) -> list[str]:
    """The command line that runs :func:`main` for ``config``: plain Python for one process,
    ``accelerate launch`` (multi-GPU data parallel) when ``config.num_processes > 1``."""
    python = python or sys.executable
    if config.num_processes <= 1:
        return [python, "-m", "training.sft", "--spec", str(spec_path)]
    return [
        python, "-m", "accelerate.commands.launch",
        "--num_processes", str(config.num_processes),
        "--num_machines", "1",
        "--mixed_precision", "no" if config.bf16 is False else "bf16",  # None: CUDA GPUs have bf16
        "--dynamo_backend", "no",
        "-m", "training.sft", "--spec", str(spec_path),
    ]


def main(argv: list[str] | None = None) -> int:
    """Script entry: train from ``--spec``; progress, result and errors go to stdout as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, type=Path, help="spec.json written by the worker")
    ns = parser.parse_args(argv)
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                       "TOKENIZERS_PARALLELISM": "false"})
    apply_thread_defaults(os.environ)  # before torch starts OpenMP, which reads them once
    try:
        spec = read_spec(ns.spec)
        results = train(spec, report=lambda p: _emit(PROGRESS_PREFIX, p))
    except BaseException as err:  # the worker records the reason; a traceback goes to stderr
        if isinstance(err, KeyboardInterrupt):
            return 130
        import traceback

        traceback.print_exc()
        _emit(ERROR_PREFIX, {"reason": failure_reason(err)})
        return 1
    if math.isnan(results["train_loss"]):
        _emit(ERROR_PREFIX, {"reason": "training diverged (loss is NaN); lower learning_rate"})
        return 1
    _emit(RESULT_PREFIX, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
