"""The vLLM backend: the command line, validation, adapter checks, and the runtime LoRA protocol
against a stand-in (tests/serving/test_vllm_real.py runs the real vLLM)."""

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


def make_adapter(tmp_path: Path, name: str, r: int = 8, weights: bytes = b"") -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": r, "peft_type": "LORA"}))
    (path / "adapter_model.safetensors").write_bytes(weights)
    return path


def python_here(tmp_path: Path) -> Path:
    """A stand-in for the vLLM environment's Python (validation only checks that it exists)."""
    exe = tmp_path / "venv" / "bin" / "python"
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    return exe


def test_command_line_has_lora_modules_rank_and_max_loras(tmp_path):
    base = make_base(tmp_path)
    a1, a2 = make_adapter(tmp_path, "v1"), make_adapter(tmp_path, "v2", r=16)
    exe = python_here(tmp_path)
    cmd = build_command(VllmConfig(base, [Adapter("threadtune/v1", a1), Adapter("threadtune/v2", a2)],
                                   port=8123, max_lora_rank=16, max_loras=2, python=exe))
    # the module, not the `vllm` script: the CPU build's script asks for a distribution named vllm
    assert cmd[:5] == [str(exe), "-m", "vllm.entrypoints.openai.api_server", "--model", str(base)]
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
                     max_lora_rank=12, max_loras=0, port=70000, python=tmp_path / "no-venv" / "python",
                     cpu_kvcache_gib=0)
    with pytest.raises(ServingError) as err:
        build_command(cfg)
    msg = str(err.value)
    for part in ("missing: no config.json", "--max-lora-rank 12", "--max-loras 0", "port 70000",
                 "'a' is used twice", "has no adapter_config.json", "clashes with the base",
                 "no vLLM environment; run `make install-vllm`", "KV cache 0 GiB"):
        assert part in msg, part


def test_adapter_rank_above_max_names_the_rank_to_use(tmp_path):
    cfg = VllmConfig(make_base(tmp_path), [Adapter("v1", make_adapter(tmp_path, "v1", r=32))], max_lora_rank=16,
                     python=python_here(tmp_path))
    with pytest.raises(ServingError, match="raise it to 32"):
        build_command(cfg)


def test_env_allows_runtime_lora_updates_and_stays_offline():
    env = vllm_env({"PYTHONPATH": "/work/main"})
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True" and env["HF_HUB_OFFLINE"] == "1"
    assert "PYTHONPATH" not in env  # the main environment's packages must not shadow vLLM's
    assert "VLLM_CPU_KVCACHE_SPACE" not in env  # GPU: no CPU settings


def test_cpu_env_sets_the_kv_cache_and_keeps_what_the_user_set():
    env = vllm_env({}, cpu_kvcache_gib=3)
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3" and env["VLLM_CPU_OMP_THREADS_BIND"] == "auto"
    mine = vllm_env({"VLLM_CPU_KVCACHE_SPACE": "8", "VLLM_CPU_OMP_THREADS_BIND": "0-1"}, cpu_kvcache_gib=3)
    assert mine["VLLM_CPU_KVCACHE_SPACE"] == "8" and mine["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"


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
    from serving.process import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerError, match="THREADTUNE_SERVING_URL"):
        VllmServer.attach(url).start()


def test_auto_picks_vllm_whenever_its_environment_is_present(tmp_path):
    assert pick_backend("auto", vllm_ready=True) == "vllm"
    assert pick_backend("auto", vllm_ready=False) == "embedded"
    assert pick_backend("auto", vllm_python=python_here(tmp_path)) == "vllm"  # no CUDA needed
    assert pick_backend("auto", vllm_python=tmp_path / "absent" / "python") == "embedded"
    assert pick_backend("embedded", vllm_python=python_here(tmp_path / "x")) == "embedded"
    with pytest.raises(ServingError, match="'auto', 'embedded' or 'vllm'"):
        pick_backend("tgi")


def test_make_backend_attaches_to_a_serving_url(fake_llm, tmp_path):
    backend = make_backend("auto", LiveModel(None, tmp_path), port=1, serving_url=fake_llm.base_url)
    assert isinstance(backend, VllmServer) and backend.base_url == fake_llm.base_url
    assert not backend.spawned


def test_a_name_is_never_reused_for_other_weights(fake_llm, tmp_path):
    """vLLM may serve stale weights under a reused adapter name (vllm issue #42125)."""
    server = VllmServer.attach(fake_llm.base_url)
    first = make_adapter(tmp_path, "a", weights=b"first weights")
    other = make_adapter(tmp_path, "b", weights=b"other weights")
    assert server.serve_model("v1", None, first) == "threadtune/v1"
    server.serve_model(None, None, None)  # rollback to the base unloads v1
    with pytest.raises(ServingError, match="42125"):
        server.serve_model("v1", None, other)
    assert fake_llm.served == ["threadtune/base"]
    # the same weights under the same name again (a rollback to v1) are fine
    assert server.serve_model("v1", None, first) == "threadtune/v1"


def test_bad_adapters_are_refused_before_the_server_sees_them(fake_llm, tmp_path):
    server = VllmServer.attach(fake_llm.base_url)
    good = make_adapter(tmp_path, "good")
    server.serve_model("v1", None, good)
    with pytest.raises(ServingError, match="no adapter_config.json"):
        server.serve_model("v2", None, tmp_path / "missing")
    with pytest.raises(ServingError, match="rank 1024 exceeds"):
        server.serve_model("v3", None, make_adapter(tmp_path, "huge", r=1024))
    assert fake_llm.served == ["threadtune/base", "threadtune/v1"] and server.model == "threadtune/v1"
    assert not [b for m, p, b in fake_llm.calls if p == "/v1/unload_lora_adapter"]


@pytest.mark.gpu
def test_real_vllm_on_a_gpu_serves_base_and_hot_loads_an_adapter(tmp_path, request):
    """Runs only on a GPU host with vLLM installed (THREADTUNE_TEST_ADAPTER: a LoRA adapter folder)."""
    from serving.vllm import has_cuda, vllm_available

    if not vllm_available() or not has_cuda():
        pytest.skip("needs the vLLM environment and CUDA")
    embedded_model_dir = request.getfixturevalue("embedded_model_dir")
    from serving.client import ModelClient
    from serving.process import free_port

    cfg = VllmConfig(embedded_model_dir, port=free_port())
    with VllmServer.spawn_config(cfg, log_path=tmp_path / "vllm.log") as server:
        client = ModelClient(server.base_url, server.model)
        assert client.chat([{"role": "user", "content": "hi"}], max_tokens=4).text
        adapter = os.environ.get("THREADTUNE_TEST_ADAPTER")
        if adapter:
            name = server.serve_model("t", None, Path(adapter))
            assert client.chat([{"role": "user", "content": "hi"}], max_tokens=4, model=name).text


def test_spawned_vllm_takes_the_rank_of_the_live_adapter(tmp_path):
    base, exe = make_base(tmp_path), python_here(tmp_path)
    big = make_adapter(tmp_path, "v1", r=48)
    server = make_backend("vllm", LiveModel("v1", base, big), port=0, vllm_python=exe, vllm_live="adapter")
    assert server.spawned and server.cfg.max_lora_rank == 64 and server.cfg.port > 0
    assert build_command(server.cfg)[-2:] == ["--lora-modules", f"threadtune/v1={big}"]
    small = make_backend("vllm", LiveModel(None, base), port=0, vllm_python=exe, vllm_live="adapter")
    assert small.cfg.max_lora_rank == 16 and small.model == "threadtune/base"


def test_on_a_cpu_the_live_model_is_served_merged_behind_a_stable_port(tmp_path):
    from serving.swap import MergedVllm
    from serving.vllm import has_cuda

    base, exe = make_base(tmp_path), python_here(tmp_path)
    v1 = make_adapter(tmp_path, "v1", r=16)
    server = make_backend("vllm", LiveModel("v1", base, v1), port=8123, vllm_python=exe,
                          merged_dir=tmp_path / "merged", vllm_live="merged")
    assert isinstance(server, MergedVllm) and server.spawned and server.model == "threadtune/v1"
    assert server.base_url == "http://127.0.0.1:8123/v1" and not server.cfg.enable_lora
    assert "--enable-lora" not in build_command(server.cfg)
    auto = make_backend("vllm", LiveModel("v1", base, v1), port=0, vllm_python=exe)
    assert isinstance(auto, MergedVllm) != has_cuda()


def test_a_merged_server_validates_before_merging(tmp_path):
    from serving.swap import MergedVllm

    cfg = VllmConfig(make_base(tmp_path), python=tmp_path / "no-venv" / "python", enable_lora=False, port=0)
    server = MergedVllm(cfg, "v1", make_adapter(tmp_path, "v1"), merged_root=tmp_path / "merged", log_dir=tmp_path)
    with pytest.raises(ServingError, match="no vLLM environment") as err:
        server.start()
    assert "port" not in str(err.value)  # port 0: the proxy takes any free port
    assert not (tmp_path / "merged").exists() and server.proxy is None


def test_a_server_swapped_in_beside_a_busy_one_gets_other_cores():
    """Two engines pinned to one core: the new one starved and never finished starting (2 cores)."""
    from serving.swap import swap_cores

    assert swap_cores("auto", [0, 1]) == "1"  # auto took core 0 (core 1 is the front end's)
    assert swap_cores("1", [0, 1]) == "auto"  # and back
    assert swap_cores("auto", [0, 1, 2, 3]) == "1,2,3" and swap_cores("auto", [0]) == "auto"
    env = vllm_env({}, cpu_kvcache_gib=1, cpu_threads_bind="1")
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "1"
    assert vllm_env({"VLLM_CPU_OMP_THREADS_BIND": "0"}, cpu_kvcache_gib=1,
                    cpu_threads_bind="1")["VLLM_CPU_OMP_THREADS_BIND"] == "0"  # the user's setting wins


def test_lora_off_takes_no_adapters(tmp_path):
    cfg = VllmConfig(make_base(tmp_path), adapters=[Adapter("threadtune/v1", make_adapter(tmp_path, "v1"))],
                     python=python_here(tmp_path), enable_lora=False)
    with pytest.raises(ServingError, match="LoRA is off"):
        build_command(cfg)
