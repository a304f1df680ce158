"""The LM head and loss at the answer tokens only: what TRL computes, without scoring every position.

With ``assistant_only_loss``, only the answer tokens of a training row carry loss (on the 60-pair
FAQ run, about half of them: the system prompt and question do not). TRL's ``SFTTrainer`` still
projects *every* position onto the 49k-token vocabulary on a CPU (it compacts to the labelled
positions only on Triton devices) and computes each position's entropy for its logs. On SmolLM2-135M
that head is over a quarter of a CPU training step.

:func:`answer_loss_trainer` subclasses ``SFTTrainer`` and overrides ``compute_loss`` (the Trainer's
documented extension point): the decoder runs as before, and the head runs at the labelled positions
only, in the dtype of its weights, with the softmax in fp32. The loss is the same sum of token
log-likelihoods over the same denominator (``num_items_in_batch``, or the number of labelled
tokens); the logs keep the loss and lose TRL's entropy and token accuracy.
"""

from __future__ import annotations

from typing import Any


def answer_loss(hidden: Any, labels: Any, head_weight: Any, num_items_in_batch: Any = None,
                pad_to: int | None = None) -> Any:
    """Mean next-token cross-entropy over the labelled positions: ``hidden`` ``[B, S, H]`` from the
    decoder, ``labels`` ``[B, S]`` (-100: no loss), ``head_weight`` the output embedding ``[V, H]``.
    ``pad_to`` pads the labelled positions with zero states, without loss, to a multiple (a few
    head shapes instead of one a step: see :func:`pad_packed_row`)."""
    import torch
    import torch.nn.functional as F

    targets = labels[:, 1:]
    mask = targets != -100
    states, targets = hidden[:, :-1][mask], targets[mask]  # [T, H]: positions whose next token carries loss
    if pad_to and states.shape[0] % pad_to:
        extra = -states.shape[0] % pad_to
        states = torch.cat([states, states.new_zeros(extra, states.shape[1])])
        targets = torch.cat([targets, targets.new_full((extra,), -100)])
    # the head in its weights' dtype (bf16 weights: AMX on a CPU, as TRL's head runs under autocast),
    # the softmax and the sum in fp32
    logits = F.linear(states.to(head_weight.dtype), head_weight)
    total = F.cross_entropy(logits.float(), targets, reduction="sum")  # -100: no loss
    count = mask.sum() if num_items_in_batch is None else num_items_in_batch
    return total / torch.as_tensor(count, device=total.device).clamp(min=1)


def pad_packed_row(inputs: dict[str, Any], multiple: int, pad_id: int) -> dict[str, Any]:
    """A padding-free batch (one flattened row of N tokens, as TRL's collator makes it) with one more
    example of ``pad_id`` tokens, without loss, that brings N up to a multiple of ``multiple``.

    Why: with bf16 on a CPU, oneDNN builds its matrix-product kernels anew for every new row length
    (about 7 ms each, dozens a step), and packed rows have hundreds of lengths; padded, a handful. The
    Trainer counts the tokens it was given, before this, so ``tokens_seen`` stays the real tokens."""
    import torch

    ids = inputs["input_ids"]
    extra = -ids.shape[1] % multiple
    if not extra:
        return inputs
    if ids.shape[0] != 1 or "position_ids" not in inputs:
        raise ValueError("pad_packed_row takes the one flattened row of a padding-free batch")
    out = dict(inputs)
    out["input_ids"] = torch.cat([ids, ids.new_full((1, extra), pad_id)], dim=1)
    out["labels"] = torch.cat([inputs["labels"], inputs["labels"].new_full((1, extra), -100)], dim=1)
    positions = inputs["position_ids"]
    out["position_ids"] = torch.cat([positions, torch.arange(extra, dtype=positions.dtype)[None]], dim=1)
    for key in ("cu_seq_lens_q", "cu_seq_lens_k"):
        if key in inputs:
            cu = inputs[key]
            out[key] = torch.cat([cu, cu[-1:] + extra])
    for key in ("max_length_q", "max_length_k"):
        if key in inputs:
            out[key] = max(int(inputs[key]), extra)
    if "seq_idx" in inputs:
        seq = inputs["seq_idx"]
        out["seq_idx"] = torch.cat([seq, seq.new_full((1, extra), int(seq.max()) + 1)], dim=1)
    return out


def answer_loss_trainer(base: type, pad_to: int | None = None) -> type:
    """``base`` (TRL's ``SFTTrainer``) with the loss computed by :func:`answer_loss`; with ``pad_to``,
    each step's packed row is padded by :func:`pad_packed_row` first."""

    class AnswerLossTrainer(base):  # type: ignore[misc,valid-type]
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if return_outputs:  # evaluation asks for the outputs: TRL's own path gives them
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            network = self.accelerator.unwrap_model(model)
            causal_lm = network.get_base_model() if hasattr(network, "get_base_model") else network
            if pad_to:
                pad_id = getattr(self.processing_class, "pad_token_id", None)
                # any token will do: the padding is an example of its own, without loss
                inputs = pad_packed_row(inputs, pad_to, 0 if pad_id is None else pad_id)
            features = {k: v for k, v in inputs.items() if k != "labels"}
            # accelerate puts autocast (bf16) around the model's own forward, which this bypasses
            with self.accelerator.autocast():
                hidden = causal_lm.get_decoder()(**features, use_cache=False).last_hidden_state
            weight = causal_lm.get_output_embeddings().weight
            return answer_loss(hidden, inputs["labels"], weight, num_items_in_batch, pad_to=pad_to)

    return AnswerLossTrainer
