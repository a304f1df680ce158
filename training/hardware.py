"""What this machine offers a training run: CPU flags, bfloat16 support, OpenMP thread settings.

Read at run time in the training child, so that one preset trains in bf16 on a CPU with
``avx512_bf16`` or AMX and stays in fp32 on one without (where bf16 is emulated and slower).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, MutableMapping

#: CPU flags that give bfloat16 matrix products in hardware (oneDNN uses them under autocast).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
#: Flags worth printing next to a CPU benchmark figure.
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
                  "amx_int8")
#: OpenMP settings a CPU training child starts with unless the environment already sets them.
#: PASSIVE: threads that wait for work sleep instead of spinning, which on a CPU shared with
#: other jobs (the bot, the server, a second worker) keeps the waiting thread from taking a core
#: that the working one needs (measured under load: 2.6x; on a quiet machine about even: README,
#: issue #17). Left out when the environment already says how threads wait (:data:`WAIT_VARIABLES`).
CPU_THREAD_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}
#: Variables that set how OpenMP threads wait. ``GOMP_SPINCOUNT=300000`` alone is libgomp's own
#: default (what a run got before the passive default), spelled out.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
#: Environment variables that set or describe the threads of a CPU run.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MKL_NUM_THREADS")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``); empty where that file is missing."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX-BF16)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def use_bf16(setting: bool | None, device: str, flags: frozenset[str] | None = None) -> bool:
    """Resolve a config's ``bf16`` (True, False, or None for "where the hardware has it")."""
    if setting is not None:
        return setting
    if device == "cuda":
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_bf16(flags)


def with_thread_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` plus :data:`CPU_THREAD_DEFAULTS`, unless it sets how threads wait itself."""
    if any(key in environ for key in WAIT_VARIABLES):
        return dict(environ)
    return {**CPU_THREAD_DEFAULTS, **environ}


def apply_thread_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    """Apply :func:`with_thread_defaults` to this process before torch loads OpenMP (it reads
    them once, when the library starts)."""
    environ.update(with_thread_defaults(environ))


def describe_cpu(flags: frozenset[str] | None = None, environ: Mapping[str, str] = os.environ) -> dict:
    """CPU model, the flags that matter for training and the thread settings, for a bench report."""
    flags = cpu_flags() if flags is None else flags
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in REPORTED_FLAGS if f in flags],
            "bf16_in_hardware": cpu_has_bf16(flags),
            "threads_env": {k: environ[k] for k in THREAD_VARIABLES if k in environ}}
