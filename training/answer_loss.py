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


def answer_loss(hidden: Any, labels: Any, head_weight: Any, num_items_in_batch: Any = None) -> Any:
    """Mean next-token cross-entropy over the labelled positions: ``hidden`` ``[B, S, H]`` from the
    decoder, ``labels`` ``[B, S]`` (-100: no loss), ``head_weight`` the output embedding ``[V, H]``."""
    import torch
    import torch.nn.functional as F

    targets = labels[:, 1:]
    mask = targets != -100
    states = hidden[:, :-1][mask]  # [T, H]: the positions whose next token carries loss
    # the head in its weights' dtype (bf16 weights: AMX on a CPU, as TRL's head runs under autocast),
    # the softmax and the sum in fp32
    logits = F.linear(states.to(head_weight.dtype), head_weight)
    total = F.cross_entropy(logits.float(), targets[mask], reduction="sum")
    count = mask.sum() if num_items_in_batch is None else num_items_in_batch
    return total / torch.as_tensor(count, device=total.device).clamp(min=1)


def answer_loss_trainer(base: type) -> type:
    """``base`` (TRL's ``SFTTrainer``) with the loss computed by :func:`answer_loss`."""

    class AnswerLossTrainer(base):  # type: ignore[misc,valid-type]
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if return_outputs:  # evaluation asks for the outputs: TRL's own path gives them
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            network = self.accelerator.unwrap_model(model)
            causal_lm = network.get_base_model() if hasattr(network, "get_base_model") else network
            features = {k: v for k, v in inputs.items() if k != "labels"}
            # accelerate puts autocast (bf16) around the model's own forward, which this bypasses
            with self.accelerator.autocast():
                hidden = causal_lm.get_decoder()(**features, use_cache=False).last_hidden_state
            weight = causal_lm.get_output_embeddings().weight
            return answer_loss(hidden, inputs["labels"], weight, num_items_in_batch)

    return AnswerLossTrainer
