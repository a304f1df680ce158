"""The SFT script on a tiny random model: loss logged, LoRA weights changed, loss mask, lineage, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.datasets import write_jsonl
from curation.errors import ConfigError
from tests.training.conftest import TEAM, add_dataset, toy_pairs
from training.config import resolve_config
from training.data import load_dataset_messages
from training.sft import CHATML_TRAINING_TEMPLATE, RunSpec, failure_reason, latest_checkpoint, train


def _spec(tmp_path: Path, model: Path, rows, **overrides) -> RunSpec:
    write_jsonl(rows, tmp_path / "train.jsonl")
    config = resolve_config("cpu-small", len(rows), {"warmup_ratio": 0.0, "per_device_batch_size": 2,
                                                      "max_length": 128, **overrides})
    return RunSpec(config, str(model), str(tmp_path / "train.jsonl"), str(tmp_path / "run"),
                   {"dataset_id": "ds1", "dataset": "v1", "base_model_spec": str(model)})


def _lora_b(folder: Path) -> dict:
    from safetensors.torch import load_file

    return {k: v for k, v in load_file(folder / "adapter_model.safetensors").items() if "lora_B" in k}


@pytest.mark.slow
def test_two_lora_steps_log_the_loss_and_change_the_lora_weights(tmp_path, tiny_model, store_with_dataset):
    train_rows, _ = load_dataset_messages(store_with_dataset, TEAM, "v1")
    seen = []
    result = train(_spec(tmp_path, tiny_model, train_rows, max_steps=2, learning_rate=1e-2), report=seen.append)
    assert result["steps"] == 2 and [p["step"] for p in seen] == [1, 2]
    assert all(p["loss"] > 0 and p["total"] == 2 for p in seen)
    assert result["last_loss"] < result["first_loss"]
    adapter = Path(result["adapter_path"])
    # PEFT initialises every lora_B to zero: any non-zero value was learned
    weights = _lora_b(adapter)
    assert weights and all(w.abs().sum() > 0 for w in weights.values())
    run = json.loads((adapter / "run.json").read_text())
    assert run["config"]["preset"] == "cpu-small" and run["config"]["max_steps"] == 2
    assert run["lineage"]["dataset_id"] == "ds1" and run["base_model"] == str(tiny_model)
    assert run["code_version"].startswith("0.") and run["results"]["loss_on"] == "assistant"


def test_the_training_template_renders_like_smollm2_and_masks_only_the_answer(embedded_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is the VPN guide?"},
            {"role": "assistant", "content": "In the wiki under IT."}]
    assert tok.apply_chat_template(chat, tokenize=False) == tok.apply_chat_template(
        chat, tokenize=False, chat_template=CHATML_TRAINING_TEMPLATE)
    assert tok.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True) == \
        tok.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True,
                                chat_template=CHATML_TRAINING_TEMPLATE)
    out = tok.apply_chat_template(chat, chat_template=CHATML_TRAINING_TEMPLATE, return_dict=True,
                                  return_assistant_tokens_mask=True)
    answer = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(answer) == "In the wiki under IT.<|im_end|>"


@pytest.mark.slow
def test_the_exported_dataset_loads_into_sft_trainer_with_loss_on_answers_only(tmp_path, tiny_model, db):
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    add_dataset(db, toy_pairs(6), n_eval=1, system_prompt="Answer briefly.")
    rows, _ = load_dataset_messages(db, TEAM, "v1")
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = CHATML_TRAINING_TEMPLATE
    trainer = SFTTrainer(
        model=str(tiny_model), processing_class=tok, train_dataset=Dataset.from_list(rows),
        peft_config=LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"),
        args=SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, packing=False, max_steps=1,
                       use_cpu=True, bf16=False, report_to="none", per_device_train_batch_size=2),
    )
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    for k, labels in enumerate(batch["labels"]):
        kept = labels[labels != -100]
        assert tok.decode(kept) == rows[k]["messages"][-1]["content"] + "<|im_end|>"


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, tiny_model, store_with_dataset):
    train_rows, _ = load_dataset_messages(store_with_dataset, TEAM, "v1")
    first = train(_spec(tmp_path, tiny_model, train_rows, max_steps=2, save_steps=1))
    assert first["resumed_from"] is None
    assert latest_checkpoint(tmp_path / "run").endswith("checkpoint-2")
    spec = _spec(tmp_path, tiny_model, train_rows, max_steps=3, save_steps=1)
    spec.resume = True
    again = train(spec)
    assert again["resumed_from"].endswith("checkpoint-2") and again["steps"] == 3


def test_failures_become_reasons_a_user_can_act_on():
    import errno

    import torch

    assert failure_reason(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")).startswith(
        "out of memory (CUDA out of memory")
    assert "lower per_device_batch_size" in failure_reason(MemoryError())
    disk = failure_reason(OSError(errno.ENOSPC, "No space left on device", "/data/run/adapter.safetensors"))
    assert disk.startswith("disk full writing /data/run/adapter.safetensors") and "resume" in disk
    assert failure_reason(ValueError("bad")) == "ValueError: bad"


@pytest.mark.slow
def test_lora_on_the_top_layers_only_stops_the_backward_pass_below_them(tmp_path, tiny_model, store_with_dataset):
    from transformers import TrainerCallback

    seen = []

    class Watch(TrainerCallback):  # what flows out of the lowest layer: does autograd track it?
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            layers = [m for name, m in model.named_modules() if name.endswith("layers.0")]
            layers[0].register_forward_hook(lambda module, inputs, out: seen.append(
                (out[0] if isinstance(out, tuple) else out).requires_grad))

    rows, _ = load_dataset_messages(store_with_dataset, TEAM, "v1")
    result = train(_spec(tmp_path, tiny_model, rows, max_steps=1, lora_top_layers=1), callbacks=[Watch()])
    adapted = set(_lora_b(Path(result["adapter_path"])))
    assert adapted and all(".layers.1." in k for k in adapted)  # on the top layer of the two only
    assert seen and not any(seen)  # layer 0 builds no graph: the backward pass ends at layer 1
    with pytest.raises(ConfigError, match="lora_top_layers=3, but the base model has 2 layers: choose 1 to 2"):
        train(_spec(tmp_path, tiny_model, rows, max_steps=1, lora_top_layers=3))


def test_packed_rows_keep_examples_apart_like_separate_rows(tiny_model):
    """Padding-free packing relies on position ids restarting per example: transformers then masks
    attention between examples, but only without a KV cache, which SFTTrainer turns off."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    a, b = torch.tensor([[5, 17, 300, 42, 9]]), torch.tensor([[7, 8, 1000]])
    with torch.no_grad():
        alone = torch.cat([model(input_ids=a).logits, model(input_ids=b).logits], dim=1)
        packed = model(input_ids=torch.cat([a, b], dim=1),
                       position_ids=torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2]]), use_cache=False).logits
    assert torch.allclose(alone, packed, atol=1e-5)


def test_resume_skips_a_checkpoint_left_half_written_by_a_kill(tmp_path):
    from training.sft import latest_checkpoint

    done, partial = tmp_path / "checkpoints" / "checkpoint-4", tmp_path / "checkpoints" / "checkpoint-6"
    done.mkdir(parents=True)
    (done / "trainer_state.json").write_text("{}")
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"half")
    assert latest_checkpoint(tmp_path) == str(done)
