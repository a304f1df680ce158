"""The CPU training levers of issue #17 change the work, not the result: attention within each packed
example equals SDPA under the block-diagonal mask, the loss at the answer tokens only equals the
loss over every position's logits, and bf16 base weights leave the adapter in fp32."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from curation.datasets import write_jsonl
from curation.errors import ConfigError
from curation.train_config import build_config
from tests.training.conftest import TEAM
from training.answer_loss import answer_loss, pad_packed_row
from training.config import resolve_config
from training.data import load_dataset_messages
from training.packed_attention import example_layout, packed_attention_forward
from training.sft import RunSpec, train

LENGTHS = [5, 7, 1, 9, 3]  # a one-token example too


class _Attention(torch.nn.Module):
    """The attributes transformers' attention modules carry and the function reads."""


def _block_causal(lengths: list[int]) -> torch.Tensor:
    n = sum(lengths)
    mask = torch.zeros(n, n, dtype=torch.bool)
    start = 0
    for length in lengths:
        mask[start:start + length, start:start + length] = torch.ones(length, length, dtype=torch.bool).tril()
        start += length
    return mask


def _qkv(dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    n = sum(LENGTHS)
    return tuple(torch.randn(1, heads, n, 8, dtype=dtype, requires_grad=True) for heads in (4, 2, 2))


def test_attention_within_packed_examples_equals_sdpa_under_the_block_diagonal_mask():
    q, k, v = _qkv(torch.float32)
    cu = torch.tensor([0, *LENGTHS], dtype=torch.int32).cumsum(0, dtype=torch.int32)
    out, weights = packed_attention_forward(_Attention(), q, k, v, None, scaling=0.3, cu_seq_lens_q=cu)
    assert weights is None and out.shape == (1, sum(LENGTHS), 4, 8)  # [batch, tokens, heads, dim]
    expected = F.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1),
                                              attn_mask=_block_causal(LENGTHS), scale=0.3).transpose(1, 2)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-5)
    # the gradients too: the padding of short examples takes no part
    grads = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), (q, k, v))
    ref = torch.autograd.grad((expected * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), (q, k, v))
    for got, want in zip(grads, ref):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_packed_attention_keeps_the_callers_dtype_under_bf16_autocast():
    q, k, v = _qkv(torch.bfloat16)
    cu = torch.tensor([0, *LENGTHS]).cumsum(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = packed_attention_forward(_Attention(), q, k, v, None, cu_seq_lens_q=cu)
    expected = F.scaled_dot_product_attention(q.float(), k.float().repeat_interleave(2, 1),
                                              v.float().repeat_interleave(2, 1),
                                              attn_mask=_block_causal(LENGTHS)).transpose(1, 2)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, atol=1e-2, rtol=1e-2)


def test_packed_attention_refuses_a_row_it_cannot_split_into_examples():
    q, k, v = _qkv(torch.float32)
    with pytest.raises(ValueError, match="for training on packed rows .* without example boundaries"):
        packed_attention_forward(_Attention(), q, k, v, None)
    with pytest.raises(ValueError, match=r"do not cover the packed row of 25 tokens"):
        example_layout(torch.tensor([0, 5, 24]), 25)
    with pytest.raises(ValueError, match="do not cover"):
        example_layout(torch.tensor([0, 5, 5, 25]), 25)  # an empty example


def test_a_model_with_packed_attention_gives_the_logits_of_sdpa(tiny_model):
    """Through the real model: the kwargs TRL's padding-free collator passes reach the attention."""
    from transformers import AutoModelForCausalLM

    from training.packed_attention import register

    sdpa = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    packed = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation=register()).eval()
    ids = torch.tensor([[5, 17, 300, 42, 9, 7, 8, 1000, 11, 12]])
    positions = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 0, 1]])
    cu = torch.tensor([0, 5, 8, 10], dtype=torch.int32)
    with torch.no_grad():
        want = sdpa(input_ids=ids, position_ids=positions, use_cache=False).logits
        got = packed(input_ids=ids, position_ids=positions, use_cache=False, cu_seq_lens_q=cu,
                     cu_seq_lens_k=cu, max_length_q=5, max_length_k=5).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_the_loss_at_the_answer_tokens_equals_the_loss_over_every_positions_logits():
    torch.manual_seed(1)
    hidden = torch.randn(2, 9, 16, requires_grad=True)
    weight = torch.randn(50, 16)
    labels = torch.randint(0, 50, (2, 9))
    labels[0, :4] = -100  # prompt tokens
    labels[1, :6] = -100
    full = F.linear(hidden, weight)  # what TRL's head computes: every position
    want = F.cross_entropy(full[:, :-1].reshape(-1, 50), labels[:, 1:].reshape(-1), ignore_index=-100)
    got = answer_loss(hidden, labels, weight)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, hidden)[0], torch.autograd.grad(want, hidden)[0])
    # with gradient accumulation the Trainer passes the token count of all micro-batches
    summed = F.cross_entropy(full[:, :-1].reshape(-1, 50), labels[:, 1:].reshape(-1), reduction="sum")
    torch.testing.assert_close(answer_loss(hidden, labels, weight, num_items_in_batch=20), summed / 20)
    labels[:] = -100  # nothing to learn in this batch: a zero, not a NaN
    assert answer_loss(hidden, labels, weight).item() == 0.0


def test_padding_the_answer_positions_leaves_the_loss_as_it_was():
    torch.manual_seed(2)
    hidden = torch.randn(1, 40, 16, requires_grad=True)
    weight = torch.randn(50, 16)
    labels = torch.randint(0, 50, (1, 40))
    labels[0, :13] = -100
    plain = answer_loss(hidden, labels, weight)
    padded = answer_loss(hidden, labels, weight, pad_to=64)
    torch.testing.assert_close(padded, plain)
    torch.testing.assert_close(torch.autograd.grad(padded, hidden)[0], torch.autograd.grad(plain, hidden)[0])


def test_a_packed_row_is_padded_with_one_example_that_carries_no_loss():
    cu = torch.tensor([0, 5, 12], dtype=torch.int32)
    row = {"input_ids": torch.arange(10, 22)[None], "labels": torch.arange(10, 22)[None],
           "position_ids": torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6]]),
           "cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": 7, "max_length_k": 7,
           "seq_idx": torch.tensor([[0] * 5 + [1] * 7], dtype=torch.int32)}
    out = pad_packed_row(row, 16, pad_id=2)
    assert out["input_ids"].shape == (1, 16) and out["input_ids"][0, 12:].tolist() == [2] * 4
    assert out["labels"][0, 12:].tolist() == [-100] * 4 and out["labels"][0, :12].tolist() == list(range(10, 22))
    assert out["position_ids"][0, 12:].tolist() == [0, 1, 2, 3]  # an example of its own
    assert out["cu_seq_lens_q"].tolist() == out["cu_seq_lens_k"].tolist() == [0, 5, 12, 16]
    assert out["max_length_q"] == 7 and out["seq_idx"][0, 12:].tolist() == [2] * 4
    assert pad_packed_row(row, 12, pad_id=2) is row  # already a multiple
    assert row["input_ids"].shape == (1, 12)  # the caller's batch is untouched (the Trainer counted it)
    with pytest.raises(ValueError, match="one flattened row"):
        pad_packed_row({"input_ids": torch.zeros(2, 5, dtype=torch.long)}, 8, pad_id=2)


def test_packed_attention_needs_packing_and_no_other_attention():
    with pytest.raises(ConfigError, match="packed_attention needs packing"):
        build_config("cpu-small", {"packing": False})
    with pytest.raises(ConfigError, match="packed_attention replaces attn_implementation='sdpa'"):
        build_config("cpu-small", {"attn_implementation": "sdpa"})
    assert build_config("cpu-small", {"packing": False, "packed_attention": False, "pad_rows_to": None}).packing is False
    with pytest.raises(ConfigError, match="pad_rows_to=64 needs answer_only_head and packing"):
        build_config("cpu-small", {"answer_only_head": False})
    with pytest.raises(ConfigError, match="answer_only_head is for one process"):
        build_config("gpu-lora", {"answer_only_head": True, "num_processes": 2})
    preset = build_config("cpu-small")
    assert preset.frozen_bf16 and preset.answer_only_head and preset.packed_attention and preset.pad_rows_to == 64


def _first_step(tmp_path: Path, model: Path, rows: list, name: str, **overrides) -> dict:
    write_jsonl(rows, tmp_path / f"{name}.jsonl")
    config = resolve_config("cpu-small", len(rows), {"max_steps": 1, "max_length": 128, "learning_rate": 1e-3,
                                                      "warmup_ratio": 0.0,
                                                      "per_device_batch_size": 2, **overrides})
    result = train(RunSpec(config, str(model), str(tmp_path / f"{name}.jsonl"), str(tmp_path / name), {}))
    return {**result, "run": json.loads((Path(result["adapter_path"]) / "run.json").read_text())}


@pytest.mark.slow
def test_the_cpu_levers_train_the_same_first_step_as_before(tmp_path, tiny_model, store_with_dataset):
    """fp32 throughout, so that only the levers differ: the same loss to float precision."""
    rows, _ = load_dataset_messages(store_with_dataset, TEAM, "v1")
    before = _first_step(tmp_path, tiny_model, rows, "before", bf16=False, answer_only_head=False,
                         packed_attention=False, pad_rows_to=None)
    after = _first_step(tmp_path, tiny_model, rows, "after", bf16=False)
    assert after["run"]["config"]["answer_only_head"] and after["run"]["config"]["packed_attention"]
    assert after["run"]["config"]["pad_rows_to"] == 64  # padded rows and answer positions: no change either
    assert after["tokens_seen"] == before["tokens_seen"]
    assert after["first_loss"] == pytest.approx(before["first_loss"], rel=1e-4)


@pytest.mark.slow
def test_bf16_base_weights_leave_the_adapter_and_its_training_in_fp32(tmp_path, tiny_model, store_with_dataset):
    from safetensors.torch import load_file

    rows, _ = load_dataset_messages(store_with_dataset, TEAM, "v1")
    run = _first_step(tmp_path, tiny_model, rows, "bf16", bf16=True)
    assert run["precision"] == "bf16" and run["base_weights"] == "bf16"
    adapter = load_file(Path(run["adapter_path"]) / "adapter_model.safetensors")
    assert adapter and {w.dtype for w in adapter.values()} == {torch.float32}
    assert all(w.abs().sum() > 0 for key, w in adapter.items() if "lora_B" in key)  # it learned
    autocast = _first_step(tmp_path, tiny_model, rows, "autocast", bf16=True, frozen_bf16=False)
    assert autocast["base_weights"] == "fp32"
    assert run["first_loss"] == pytest.approx(autocast["first_loss"], rel=0.02)
