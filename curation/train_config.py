"""What a training run may be asked for: the typed config, its three YAML presets, and the checks.

Shared ground (pure, torch-free): the bot checks `/threadtune train` overrides with it before it
queues a job, the CLI before ``threadtune train``, and the worker builds the run's config from it.
A preset (``curation/train_presets/<name>.yaml``) sets some fields of :class:`TrainConfig`;
overrides set others; :func:`build_config` collects every problem into one error.
``training.config.resolve_config`` then derives epochs and learning rate from the dataset size when
neither gave them. The resolved config is written next to every adapter (``run.json``).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from curation.errors import ConfigError

PRESET_NAMES = ("cpu-small", "gpu-lora", "gpu-qlora")
#: Names people type from other trainers' flags, for the "did you mean" of an unknown key.
COMMON_NAMES = {"lr": "learning_rate", "rank": "lora_r", "r": "lora_r", "alpha": "lora_alpha",
                "batch_size": "per_device_batch_size", "steps": "max_steps", "epoch": "epochs"}


def _f(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - mirrors TRL's field(metadata={"help"})
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class TrainConfig:
    """One LoRA SFT run. Every field has help text (``threadtune train --help-config`` prints it)."""

    preset: str = _f("cpu-small", "Name of the preset these values started from.")
    device: str = _f("cpu", "'cpu' or 'cuda'. gpu-* presets need CUDA.")
    # --- schedule -----------------------------------------------------------------------------
    epochs: float | None = _f(None, "Passes over the train split. None: derived from the dataset "
                              "size (see derive_schedule).")
    learning_rate: float | None = _f(None, "Peak learning rate. None: base_learning_rate scaled for "
                                     "the dataset size.")
    base_learning_rate: float = _f(2e-4, "Learning rate for a large dataset; small ones get more.")
    max_steps: int = _f(-1, "Stop after this many optimizer steps (-1: run the epochs).")
    warmup_ratio: float = _f(0.05, "Fraction of steps spent warming the learning rate up.")
    lr_scheduler_type: str = _f("cosine", "transformers scheduler name.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    per_device_batch_size: int = _f(8, "Sequences (or packed rows) per device and step.")
    gradient_accumulation_steps: int = _f(1, "Steps whose gradients add up before an update.")
    max_length: int = _f(512, "Longest tokenized example (or packed row) in tokens.")
    packing: bool = _f(True, "Pack examples best-fit into rows of max_length, padding-free "
                       "(TRL packing_strategy='bfd'); False pads each batch instead.")
    seed: int = _f(42, "Seed for data order, LoRA init and dropout.")
    question_forms: bool = _f(True, "Also train each pair on alternate forms of its question: "
                              "without its topic label, and as keywords (training/augment.py), so "
                              "the adapter answers rephrased questions too. Epochs and rate are "
                              "derived from the number of pairs, so a run takes 2-3x longer.")
    neftune_noise_alpha: float | None = _f(None, "NEFTune: uniform noise of this scale added to the "
                                           "input embeddings while training (None: off; the "
                                           "paper uses 5). No gain on the 60-pair FAQ run.")
    # --- LoRA -------------------------------------------------------------------------------------
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = _f(0.05, "Dropout on the LoRA input.")
    target_modules: str | list[str] = _f("all-linear", "Modules that get adapters: 'all-linear' "
                                         "or a list of module names.")
    lora_top_layers: int | None = _f(None, "Adapters only on the top N transformer layers (PEFT "
                                     "layers_to_transform); the backward pass then stops at the lowest "
                                     "adapted layer. None: every layer. Not in any preset: on the CPU "
                                     "it trades loss for speed (README, issue #17).")
    # --- precision and kernels -------------------------------------------------------------------
    bf16: bool | None = _f(False, "Train in bfloat16: bf16 weights and autocast on a GPU; autocast "
                           "over fp32 weights on a CPU. None: where the hardware has it (a CPU with "
                           "avx512_bf16 or AMX, a GPU with bf16), fp32 elsewhere; decided when the "
                           "run starts (training/hardware.py).")
    frozen_bf16: bool = _f(False, "Where bf16 is on, keep the frozen base weights in bf16 too (the "
                           "LoRA weights and the optimizer stay fp32), so no step casts the base "
                           "model again. False on a CPU: autocast over fp32 weights (on a GPU bf16 "
                           "always loads the weights in bf16).")
    answer_only_head: bool = _f(False, "Compute the LM head and loss at the answer tokens only (the "
                                "tokens that carry loss), not at every position as TRL does on a CPU; "
                                "the loss is the same, TRL's entropy and token-accuracy logs are left "
                                "out (training/answer_loss.py).")
    pad_rows_to: int | None = _f(None, "With answer_only_head and packing, pad each step's packed row "
                                 "(and its answer positions) to a multiple of this many tokens, with no "
                                 "loss on the padding: with bf16 on a CPU, oneDNN builds its matrix-product "
                                 "kernels anew for every new row length (about 7 ms each, dozens a step). "
                                 "None: no padding.")
    packed_attention: bool = _f(False, "With packing, attend within each packed example as a batch of "
                                "examples, not over the whole row under a mask: exact, and a fraction of "
                                "the work on a CPU (training/packed_attention.py). Needs packing and no "
                                "attn_implementation.")
    torch_compile: bool = _f(False, "Compile the model with torch.compile (transformers' "
                             "torch_compile). Off in every preset: on 2 CPU cores it made steps "
                             "1.06x faster after 4.5 min of compiling (README, issue #17).")
    gradient_checkpointing: bool = _f(False, "Recompute activations to save memory.")
    load_in_4bit: bool = _f(False, "QLoRA: load the base model in 4-bit NF4 (needs bitsandbytes).")
    use_liger_kernel: bool | None = _f(False, "Liger kernels; None: on when liger_kernel is installed.")
    attn_implementation: str | None = _f(None, "'flash_attention_2', 'sdpa' …; None: flash "
                                         "attention when installed on CUDA, else sdpa.")
    num_processes: int = _f(1, "GPUs for one run; above 1 the worker starts `accelerate launch`.")
    # --- checkpoints and logs --------------------------------------------------------------------
    save_steps: int = _f(50, "Write a resumable checkpoint every this many steps.")
    save_total_limit: int = _f(2, "Checkpoints kept on disk.")
    logging_steps: int = _f(1, "Log loss every this many steps.")

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """``{field: help}`` for docs and ``--help-config``."""
        return {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Raise one ConfigError listing every invalid field."""
        problems = self.problems()
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with the fields' values, one phrase each (empty: valid)."""
        problems = []
        if self.preset not in PRESET_NAMES:
            problems.append(f"preset {self.preset!r} is unknown (choose {', '.join(PRESET_NAMES)})")
        if self.device not in ("cpu", "cuda"):
            problems.append(f"device {self.device!r} must be 'cpu' or 'cuda'")
        for name in ("per_device_batch_size", "gradient_accumulation_steps", "max_length", "lora_r",
                     "lora_alpha", "save_steps", "save_total_limit", "logging_steps", "num_processes"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.epochs is not None and self.epochs <= 0:
            problems.append(f"epochs must be positive (got {self.epochs})")
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            problems.append(f"learning_rate must be in (0, 1) (got {self.learning_rate})")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if self.neftune_noise_alpha is not None and self.neftune_noise_alpha <= 0:
            problems.append(f"neftune_noise_alpha must be positive or null (got {self.neftune_noise_alpha})")
        if not 0 <= self.lora_dropout < 1:
            problems.append(f"lora_dropout must be in [0, 1) (got {self.lora_dropout})")
        if self.lora_top_layers is not None and self.lora_top_layers < 1:
            problems.append(f"lora_top_layers must be at least 1 or null (got {self.lora_top_layers})")
        if self.max_steps == 0 or self.max_steps < -1:
            problems.append(f"max_steps must be -1 or positive (got {self.max_steps})")
        if self.packed_attention and not self.packing:
            problems.append("packed_attention needs packing (it attends within each packed example)")
        if self.packed_attention and self.attn_implementation:
            problems.append(f"packed_attention replaces attn_implementation={self.attn_implementation!r}: "
                            "set one of them")
        if self.pad_rows_to is not None and not (self.answer_only_head and self.packing and self.pad_rows_to >= 1):
            problems.append(f"pad_rows_to={self.pad_rows_to} needs answer_only_head and packing, and at least 1 "
                            "(or null)")
        if self.answer_only_head and self.num_processes > 1:
            problems.append("answer_only_head is for one process: across GPUs TRL's own head scales the "
                            "loss for data parallelism")
        if self.load_in_4bit and self.device != "cuda":
            problems.append("load_in_4bit needs device 'cuda' (bitsandbytes 4-bit is GPU-only)")
        if self.num_processes > 1 and self.device != "cuda":
            problems.append("num_processes > 1 needs device 'cuda'")
        return problems


def load_preset(name: str) -> dict[str, Any]:
    """The fields a preset sets, from ``curation/train_presets/<name>.yaml``."""
    if name not in PRESET_NAMES:
        raise ConfigError(f"preset {name!r} is unknown; choose one of {', '.join(PRESET_NAMES)}")
    text = resources.files("curation").joinpath("train_presets", f"{name}.yaml").read_text()
    values = yaml.safe_load(text) or {}
    values["preset"] = name
    return values


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["lora_r=8", "packing=false"]`` → typed values (YAML scalars).

    Unknown keys, pairs without ``=`` and unreadable values are all reported in one ConfigError,
    which lists the valid keys (a Slack user cannot run ``--help-config``).
    """
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig) if f.name != "preset"}
    out: dict[str, Any] = {}
    bad, unknown = [], False
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key:
            bad.append(f"{pair!r} is not KEY=VALUE")
            continue
        if key == "preset":  # it picks the values the overrides change: it is not one of them
            bad.append("the preset is chosen with --preset NAME (`preset=NAME` in Slack), not with --set")
            continue
        if key not in types:
            close = [COMMON_NAMES[key]] if key in COMMON_NAMES else difflib.get_close_matches(key, list(types), n=1)
            bad.append(f"{key!r} is not a config field" + (f" (did you mean {close[0]}?)" if close else ""))
            unknown = True
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            bad.append(f"{pair!r} has an unreadable value")
            continue
        kind = str(types[key])
        if isinstance(value, str) and kind.startswith(("float", "int")):
            try:  # YAML 1.1 reads "3e-4" as text
                value = float(value) if kind.startswith("float") else int(value)
            except ValueError:
                pass  # validation reports it with the field's type
        out[key] = value
    if bad:
        keys = f"; valid keys: {', '.join(types)}" if unknown else ""
        raise ConfigError("bad override: " + "; ".join(bad) + keys)
    return out


def build_config(preset: str, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Preset + overrides → a checked TrainConfig (epochs and learning rate may still be None:
    ``training.config.resolve_config`` derives them from the dataset size)."""
    values = load_preset(preset)
    values.update(overrides or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"preset {preset!r}: unknown field(s) {', '.join(unknown)}")
    try:
        config = TrainConfig(**values)
    except TypeError as err:
        raise ConfigError(f"preset {preset!r}: {err}") from None
    problems = _coerce(config)  # a field of the wrong type is reported, then checked at its default
    problems += config.problems()
    if problems:
        raise ConfigError("invalid training config: " + "; ".join(problems))
    return config


def split_train_words(words: list[str]) -> tuple[str, str, list[str]]:
    """``[DATASET] [--preset P | preset=P] [KEY=VALUE …]`` (what `/threadtune train` takes) →
    ``(dataset, preset, ["KEY=VALUE", …])``; :func:`check_overrides` then checks the pairs."""
    dataset, preset, pairs = "latest", "cpu-small", []
    it = iter(words)
    for word in it:
        key, sep, value = word.partition("=")
        if word in ("--preset", "-p"):
            preset = next(it, "")
        elif sep and key.strip().lstrip("-") == "preset":
            preset = value
        elif sep:
            pairs.append(word)
        else:
            dataset = word
    return dataset, preset, pairs


def check_overrides(preset: str, pairs: list[str]) -> dict[str, Any]:
    """Typed overrides from ``KEY=VALUE`` pairs, checked against the preset at once (unknown keys,
    types, ranges), so that a bad request is refused before it is queued. Every problem is in the
    one ConfigError."""
    problems = []
    overrides: dict[str, Any] = {}
    try:
        overrides = parse_overrides(pairs)
    except ConfigError as err:
        problems.append(str(err))
    try:
        build_config(preset, overrides)
    except ConfigError as err:
        problems.append(str(err))
    if problems:
        raise ConfigError("; ".join(problems))
    return overrides


def _coerce(config: TrainConfig) -> list[str]:
    """YAML and CLI values arrive loosely typed: make numbers numbers, and report (and reset to its
    default) each value that is not of its field's type."""
    problems = []
    defaults = TrainConfig()
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        kind = str(f.type)
        if value is None or kind.startswith("str"):
            continue
        try:
            if kind.startswith("int"):
                setattr(config, f.name, int(value))
            elif kind.startswith("float"):
                setattr(config, f.name, float(value))
            elif kind.startswith("bool") and not isinstance(value, bool):
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"{f.name}={value!r} is not a {kind.split(' ')[0]}")
            setattr(config, f.name, getattr(defaults, f.name))
    return problems
