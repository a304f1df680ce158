"""What accelerator and engines this machine has, without importing torch where it is absent."""

from __future__ import annotations

import importlib.util


def cuda_devices() -> list[str]:
    """Names of the visible CUDA devices (empty without torch or CUDA)."""
    if importlib.util.find_spec("torch") is None:
        return []
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def vllm_importable() -> bool:
    """Whether vLLM is installed in this environment (it usually lives in its own)."""
    return importlib.util.find_spec("vllm") is not None
