"""The vLLM backend: the command line, validation, and the runtime LoRA protocol against a stand-in."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from serving.backend import LiveModel, make_backend, pick_backend
from serving.errors import ServerError, ServingError
from serving.vllm import Adapter, VllmConfig, VllmServer, build_command, vllm_env


def make_base(tmp_path: Path) -> Path:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    return base


def make_adapter(tmp_path: Path, name: str, r: int = 8) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": r, "peft_type": "LORA"}))
    (path / "adapter_model.safetensors").write_bytes(b"")
    return path


def test_command_line_has_lora_modules_rank_and_max_loras(tmp_path):
    base = make_base(tmp_path)
    a1, a2 = make_adapter(tmp_path, "v1"), make_adapter(tmp_path, "v2", r=16)
    cmd = build_command(VllmConfig(base, [Adapter("threadtune/v1", a1), Adapter("threadtune/v2", a2)],
                                   port=8123, max_lora_rank=16, max_loras=2))
    assert cmd[:3] == ["vllm", "serve", str(base)]
    assert "--enable-lora" in cmd
    assert cmd[cmd.index("--max-lora-rank") + 1] == "16"
    assert cmd[cmd.index("--max-loras") + 1] == "2"
    assert cmd[cmd.index("--port") + 1] == "8123"
    at = cmd.index("--lora-modules")
    assert cmd[at + 1:at + 3] == [f"threadtune/v1={a1}", f"threadtune/v2={a2}"]
    assert cmd[cmd.index("--served-model-name") + 1] == "threadtune/base"


def test_validation_collects_every_problem_before_spawning(tmp_path):
    big = make_adapter(tmp_path, "big", r=64)
    cfg = VllmConfig(tmp_path / "missing", [Adapter("a", big), Adapter("a", tmp_path / "nothing"),
                                            Adapter("threadtune/base", big)],
                     max_lora_rank=12, max_loras=0, port=70000)
    with pytest.raises(ServingError) as err:
        build_command(cfg)
    msg = str(err.value)
    for part in ("missing: no config.json", "--max-lora-rank 12", "--max-loras 0", "port 70000",
                 "'a' is used twice", "has no adapter_config.json", "clashes with the base"):
        assert part in msg, part


def test_adapter_rank_above_max_names_the_rank_to_use(tmp_path):
    cfg = VllmConfig(make_base(tmp_path), [Adapter("v1", make_adapter(tmp_path, "v1", r=32))], max_lora_rank=16)
    with pytest.raises(ServingError, match="raise it to 32"):
        build_command(cfg)


def test_env_allows_runtime_lora_updates_and_stays_offline():
    env = vllm_env({})
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True" and env["HF_HUB_OFFLINE"] == "1"


def test_promotion_hot_loads_the_new_adapter_and_unloads_the_old(fake_llm, tmp_path):
    server = VllmServer.attach(fake_llm.base_url).start()
    v1, v2 = make_adapter(tmp_path, "v1"), make_adapter(tmp_path, "v2")
    assert server.serve_model("v1", None, v1) == "threadtune/v1"
    assert server.serve_model("v2", None, v2) == "threadtune/v2"
    lora = [(p, b) for m, p, b in fake_llm.calls if "lora" in p]
    assert lora == [
        ("/v1/load_lora_adapter", {"lora_name": "threadtune/v1", "lora_path": str(v1)}),
        ("/v1/load_lora_adapter", {"lora_name": "threadtune/v2", "lora_path": str(v2)}),
        ("/v1/unload_lora_adapter", {"lora_name": "threadtune/v1"}),
    ]
    assert fake_llm.served == ["threadtune/base", "threadtune/v2"]
    # rollback to the base model unloads the adapter, with no restart
    assert server.serve_model(None, None, None) == "threadtune/base"
    assert fake_llm.served == ["threadtune/base"]


def test_loading_twice_is_a_clear_error_and_serve_model_skips_loaded(fake_llm, tmp_path):
    server = VllmServer.attach(fake_llm.base_url)
    v1 = make_adapter(tmp_path, "v1")
    server.load_adapter("threadtune/v1", v1)
    with pytest.raises(ServerError, match="already been loaded"):
        server.load_adapter("threadtune/v1", v1)
    assert server.serve_model("v1", None, v1) == "threadtune/v1"


def test_server_without_runtime_lora_says_how_to_enable_it(fake_llm, tmp_path):
    fake_llm.runtime_lora = False
    with pytest.raises(ServerError, match="VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"):
        VllmServer.attach(fake_llm.base_url).load_adapter("threadtune/v1", make_adapter(tmp_path, "v1"))


def test_attach_to_nothing_fails_with_the_url():
    from bot.server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerError, match="THREADTUNE_SERVING_URL"):
        VllmServer.attach(url).start()


def test_auto_picks_vllm_only_when_importable_with_cuda():
    assert pick_backend("auto", vllm_ready=True) == "vllm"
    assert pick_backend("auto", vllm_ready=False) == "embedded"
    assert pick_backend("embedded") == "embedded"
    with pytest.raises(ServingError, match="'auto', 'embedded' or 'vllm'"):
        pick_backend("tgi")


def test_auto_here_is_embedded_without_cuda():
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        assert pick_backend("auto") == "embedded"


def test_make_backend_attaches_to_a_serving_url(fake_llm, tmp_path):
    backend = make_backend("auto", LiveModel(None, tmp_path), port=1, serving_url=fake_llm.base_url)
    assert isinstance(backend, VllmServer) and backend.base_url == fake_llm.base_url


@pytest.mark.gpu
def test_real_vllm_serves_base_and_hot_loads_an_adapter(tmp_path, request):
    """Runs only on a GPU host with vLLM installed (THREADTUNE_TEST_ADAPTER: a LoRA adapter folder)."""
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        pytest.skip("needs vLLM and CUDA")
    embedded_model_dir = request.getfixturevalue("embedded_model_dir")
    from bot.server import free_port
    from serving.client import ModelClient

    cfg = VllmConfig(embedded_model_dir, port=free_port(), extra_args=["--max-model-len", "2048"])
    with VllmServer.spawn_config(cfg).start(log_path=tmp_path / "vllm.log") as server:
        client = ModelClient(server.base_url, server.model)
        assert client.chat([{"role": "user", "content": "hi"}], max_tokens=4).text
        adapter = os.environ.get("THREADTUNE_TEST_ADAPTER")
        if adapter:
            name = server.serve_model("t", None, Path(adapter))
            assert client.chat([{"role": "user", "content": "hi"}], max_tokens=4, model=name).text
