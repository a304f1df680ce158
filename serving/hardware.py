"""What accelerator this machine has, without importing torch where it is absent (vLLM lives in its
own environment: see :func:`serving.vllm.vllm_available`)."""

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
