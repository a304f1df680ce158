"""The curation model as the plain values curation/ takes, read from Settings (the shell wires it)."""

from __future__ import annotations

from typing import Any

from curation.llm import LLMConfig
from threadtune.settings import Settings


def curation_llm(s: Settings, **overrides: Any) -> LLMConfig:
    """The endpoint of THREADTUNE_LLM_BASE_URL, or the base model served for the run by the serving
    backend (vLLM when its environment is present); ``overrides`` replace single fields."""
    from serving.models import resolve

    base = None if s.llm_base_url else resolve(s.base_model, s.models_dir).path
    values: dict[str, Any] = {
        "base_url": s.llm_base_url, "model": s.llm_model, "api_key": s.llm_api_key, "base_model": base,
        "backend": s.serving_backend, "vllm_python": s.vllm_python, "cpu_kvcache_gib": s.vllm_cpu_kvcache_gib,
        "log_dir": s.data_dir / "serve"}
    return LLMConfig(**{**values, **overrides})
