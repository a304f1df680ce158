"""The embedded backend: real `transformers serve` with SmolLM2 on a free port, the real openai client."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from serving.client import ModelClient
from serving.embedded import EmbeddedServer, merged_model, publish_to_hub_cache, served_name
from serving.errors import ModelNotFound, ServerError

ASK = [{"role": "user", "content": "Say hello."}]


def test_served_names_are_valid_repo_ids():
    assert served_name(None) == "threadtune/base"
    assert served_name("v 3/x") == "threadtune/v-3-x"


def test_hub_cache_snapshot_links_to_the_model_folder(tmp_path):
    """Our offline hub cache is a snapshot of symlinks that huggingface_hub's public scanner reads."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    with pytest.raises(CacheNotFound):
        scan_cache_dir(tmp_path / "no-cache")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (model / "model.safetensors").write_bytes(b"x")
    snapshot = publish_to_hub_cache(model, tmp_path / "hub", "threadtune/v7")
    assert (snapshot / "config.json").resolve() == (model / "config.json").resolve()
    assert [r.repo_id for r in scan_cache_dir(tmp_path / "hub").repos] == ["threadtune/v7"]


@pytest.mark.slow
def test_hub_cache_workaround_makes_models_listing_work_offline(embedded_model_dir, tmp_path):
    """`GET /v1/models` of the real `transformers serve`, through the openai client, lists the
    served name: without the workaround it scans a missing hub cache and answers 500."""
    import openai

    with EmbeddedServer(embedded_model_dir, name="v7", work_dir=tmp_path / "w") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="threadtune", max_retries=0, timeout=60)
        assert [m.id for m in client.models.list()] == ["threadtune/v7"]


def test_missing_model_folder_is_refused_before_spawning(tmp_path):
    with pytest.raises(ModelNotFound, match="threadtune init"):
        EmbeddedServer(tmp_path / "nothing").start()


def test_adapter_folder_is_refused_with_the_merge_hint(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelNotFound, match="merged_model"):
        EmbeddedServer(tmp_path).validate()


@pytest.mark.slow
def test_server_that_dies_at_start_reports_its_log(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ServerError, match="exited with code"):
        EmbeddedServer(broken, startup_timeout_s=120).start()


@pytest.mark.slow
def test_real_embedded_server_answers_streaming_and_not_through_openai(embedded_model_dir, tmp_path):
    with EmbeddedServer(embedded_model_dir, name="base", work_dir=tmp_path / "w") as server:
        assert server.port > 0 and server.alive()
        client = ModelClient(server.base_url, server.model, timeout=120, max_retries=0)
        assert client.models() == ["threadtune/base"]  # the hub-cache workaround, live
        out = client.chat(ASK, max_tokens=8)
        assert out.text and out.model == "threadtune/base" and 0 < out.completion_tokens <= 8
        deltas = list(client.stream(ASK, max_tokens=8))
        assert len(deltas) >= 2 and "".join(deltas).strip()
        env = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        assert b"HF_HUB_OFFLINE=1" in env
        pid = server.pid
    assert not os.path.exists(f"/proc/{pid}") or b"zombie" in Path(f"/proc/{pid}/status").read_bytes()


@pytest.mark.slow
def test_adapter_is_served_as_a_merged_copy_and_promotion_restarts(embedded_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(embedded_model_dir))
    peft = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter-v1"
    peft.save_pretrained(adapter)
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(embedded_model_dir)
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))

    out = merged_model(embedded_model_dir, adapter, tmp_path / "merged" / "v1")
    reloaded = AutoModelForCausalLM.from_pretrained(str(out))
    fresh = AutoModelForCausalLM.from_pretrained(str(embedded_model_dir))
    q_merged = reloaded.model.layers[0].self_attn.q_proj.weight
    q_base = fresh.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(q_merged, q_base)  # the LoRA delta is in the weights
    stamp = (out / "threadtune-merged.json").stat().st_mtime
    assert merged_model(embedded_model_dir, adapter, out) == out  # reused, not merged again
    assert (out / "threadtune-merged.json").stat().st_mtime == stamp

    server = EmbeddedServer(embedded_model_dir, name=None, merged_dir=tmp_path / "merged")
    with server:
        first_pid = server.pid
        assert server.serve_model("v1", embedded_model_dir, adapter) == "threadtune/v1"
        assert server.pid != first_pid
        client = ModelClient(server.base_url, server.model, timeout=120, max_retries=0)
        assert client.models() == ["threadtune/v1"]
        assert client.chat(ASK, max_tokens=4).text
        # the same version again: no restart
        pid = server.pid
        server.serve_model("v1", embedded_model_dir, adapter)
        assert server.pid == pid


def test_merging_something_that_is_not_an_adapter_names_the_folder(tmp_path):
    with pytest.raises(ModelNotFound, match="not a PEFT adapter"):
        merged_model(tmp_path, tmp_path / "nope", tmp_path / "out")
