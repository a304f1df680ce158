"""Attention for packed training rows that attends within each packed example only, as a batch.

TRL's best-fit packing without padding flattens a batch into one row of N tokens and marks where
each example starts (``cu_seq_lens_q``). With ``sdpa``, transformers then builds an N × N
block-diagonal causal mask, and SDPA's CPU kernel computes the whole N × N square to mask most of it
away: for 1,024 tokens of ~95-token examples, ten times the products a per-example attention needs.

:func:`packed_attention_forward` lays the examples out as a right-padded batch (one row per example,
as long as the longest) and runs causal SDPA on it, in fp32 even under bf16 autocast (on the CPU,
SDPA's fp32 kernel is faster than its bf16 one at these shapes). The result is exact, not an
approximation: a query attends to keys at or before its own position, all inside its own example, so
the padding at the end of a row is never attended; the padded queries' outputs are dropped and get
no gradient.

Registered with transformers' public ``AttentionInterface`` under :data:`NAME`; it builds no mask
(transformers skips mask creation for an attention it has no mask function for).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

NAME = "threadtune_packed"


def example_layout(cu_seq_lens: torch.Tensor, n_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(index, valid)`` for examples starting at ``cu_seq_lens[:-1]``: ``index[i, j]`` is the row
    position of token j of example i (clamped into the row past its end), ``valid`` marks the real ones."""
    starts = cu_seq_lens[:-1].long()
    lengths = cu_seq_lens.diff().long()
    if int(cu_seq_lens[-1]) != n_tokens or bool((lengths <= 0).any()):
        raise ValueError(f"cu_seq_lens {cu_seq_lens.tolist()} do not cover the packed row of {n_tokens} tokens")
    offsets = torch.arange(int(lengths.max()), device=cu_seq_lens.device)
    index = (starts[:, None] + offsets[None]).clamp(max=n_tokens - 1)
    return index, offsets[None] < lengths[:, None]


def packed_attention_forward(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: torch.Tensor | None, dropout: float = 0.0,
                             scaling: float | None = None, cu_seq_lens_q: torch.Tensor | None = None,
                             **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Causal attention within each packed example. ``query`` is ``[1, heads, N, dim]``, ``key`` and
    ``value`` ``[1, kv_heads, N, dim]``; returns ``[1, N, heads, dim]`` like transformers' sdpa."""
    if cu_seq_lens_q is None or query.shape[0] != 1:
        given = "no cu_seq_lens_q" if cu_seq_lens_q is None else f"{query.shape[0]} rows"
        raise ValueError(f"{NAME} attention is for training on packed rows (packing=True, one flattened "
                         f"row with cu_seq_lens_q); got {given}, so without example boundaries")
    n_tokens = query.shape[2]
    index, valid = example_layout(cu_seq_lens_q.to(query.device), n_tokens)

    def batched(states: torch.Tensor) -> torch.Tensor:  # [1, h, N, d] → [examples, h, longest, d]
        return states[0][:, index].transpose(0, 1).float()

    # autocast would run SDPA in bf16, the slower kernel here
    with torch.autocast(query.device.type, enabled=False):
        out = F.scaled_dot_product_attention(
            batched(query), batched(key), batched(value), is_causal=True, scale=scaling,
            dropout_p=dropout if module.training else 0.0, enable_gqa=key.shape[1] != query.shape[1])
    # [examples, h, longest, d] → the real tokens in row order → [1, N, h, d]
    return out.transpose(1, 2)[valid].to(query.dtype).unsqueeze(0), None


def register() -> str:
    """Make :data:`NAME` an ``attn_implementation`` (idempotent); returns the name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_attention_forward)
    return NAME
