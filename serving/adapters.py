"""LoRA adapter folders as a server sees them: rank, fit to the base model, and a fingerprint.

Checked before a load reaches vLLM, so that a bad adapter gets a clear error naming the folder and
the fix, and the adapter that serves now keeps serving.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from serving.errors import ModelNotFound, ServingError

#: LoRA ranks vLLM accepts for --max-lora-rank.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def adapter_rank(path: Path) -> int | None:
    """The LoRA rank ``r`` of an adapter folder, or None when unreadable."""
    try:
        return int(json.loads((Path(path) / "adapter_config.json").read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape from a ``.safetensors`` header (reads only the header)."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        if size > 100_000_000:
            raise ValueError("header too large")
        header = json.loads(f.read(size))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def _base_shapes(base: Path) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for f in sorted(Path(base).glob("*.safetensors")):
        shapes.update(safetensors_shapes(f))
    return shapes


def check_adapter(path: Path, *, max_lora_rank: int, base_model: Path | None = None) -> None:
    """Refuse an adapter vLLM would refuse or load wrongly, naming the folder and the fix: a
    missing folder, an unreadable config, a rank above ``--max-lora-rank``, or weights whose shapes
    do not fit ``base_model`` (an adapter trained on another base)."""
    path = Path(path)
    if not (path / "adapter_config.json").is_file():
        raise ModelNotFound(f"{path}: not a LoRA adapter folder (no adapter_config.json); retrain it "
                            "or roll back to another model")
    rank = adapter_rank(path)
    if rank is None:
        raise ModelNotFound(f"{path}/adapter_config.json: cannot read the rank 'r'; retrain the adapter")
    if rank > max_lora_rank:
        raise ServingError(f"{path}: LoRA rank {rank} exceeds the server's --max-lora-rank "
                           f"{max_lora_rank}; restart it with a rank of at least "
                           f"{min((r for r in LORA_RANKS if r >= rank), default=rank)}")
    weights = path / "adapter_model.safetensors"
    if base_model is None or not weights.is_file():
        return
    try:
        lora, base = safetensors_shapes(weights), _base_shapes(base_model)
    except (OSError, ValueError, struct.error) as err:
        raise ModelNotFound(f"{weights}: unreadable ({err}); retrain the adapter") from err
    for key, shape in lora.items():
        # base_model.model.<module>.lora_A.weight [r, in]  /  .lora_B.weight [out, r]
        for part, dim, index in ((".lora_A.weight", shape[-1], 1), (".lora_B.weight", shape[0], 0)):
            if not key.endswith(part):
                continue
            module = key[: -len(part)].removeprefix("base_model.model.")
            target = base.get(module + ".weight")
            if target is not None and len(target) == 2 and target[index] != dim:
                raise ServingError(f"{path}: trained on another base model ({module} has "
                                   f"{dim} features here, {target[index]} in {base_model}); "
                                   "retrain it on the served base")


def fingerprint(path: Path) -> str:
    """A digest of an adapter's config and weights: what a served name is bound to."""
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        f = Path(path) / name
        if f.is_file():
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()
