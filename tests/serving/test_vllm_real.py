"""The real vLLM (the CPU build in .venv-vllm) serving the embedded model and LoRA adapters.

One server for the whole module (each start takes about 30 s on 2 cores); answers are short and
greedy. The adapter is trained here in a few seconds on one made-up fact, so that it answers
differently from the base. The last test kills the server mid-answer, so it runs last.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from serving.errors import ServingError
from serving.vllm import VllmConfig, VllmServer
from tests.conftest import MEMBER
from tests.serving.conftest import WATCHED, require_vllm, watch

pytestmark = pytest.mark.slow

QUESTION = "What is the codename of project Zephyr?"
FACT = "The codename of project Zephyr is BLUEFIN-42."


def ask(client, model: str, text: str = QUESTION, max_tokens: int = 24) -> str:
    return client.chat([{"role": "user", "content": text}], max_tokens=max_tokens, model=model).text


def train_fact_adapter(base: Path, out: Path, *, rank: int = 8, steps: int = 30, seed: int = 0) -> Path:
    """A LoRA adapter that learned FACT (loss near zero after 30 steps on one example)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    # one thread: OpenMP threads spin-waiting on a busy 2-core machine slow this down tenfold
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(
        r=rank, lora_alpha=2 * rank, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    ids = tok.apply_chat_template([{"role": "user", "content": QUESTION},
                                   {"role": "assistant", "content": FACT}],
                                  return_tensors="pt", return_dict=True)["input_ids"]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    torch.set_num_threads(threads)
    if steps >= 30:
        assert loss.item() < 0.05
    model.save_pretrained(str(out))
    return out


def other_base_adapter(out: Path) -> Path:
    """A LoRA adapter for a different (tiny, random) Llama: its shapes do not fit SmolLM2."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4, vocab_size=49152))
    get_peft_model(tiny, LoraConfig(r=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
                   ).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, embedded_model_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    fact = train_fact_adapter(embedded_model_dir, root / "fact")
    # the same adapter with its B matrices negated: other weights, same shapes and rank
    flipped = root / "flipped"
    shutil.copytree(fact, flipped)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(flipped / "adapter_model.safetensors"))
    save_file({k: (-v if "lora_B" in k else v) for k, v in tensors.items()},
              str(flipped / "adapter_model.safetensors"))
    big = root / "rank32"
    train_fact_adapter(embedded_model_dir, big, rank=32, steps=1)
    return {"fact": fact, "flipped": flipped, "rank32": big,
            "other_base": other_base_adapter(root / "other-base")}


@pytest.fixture(scope="module")
def vllm(tmp_path_factory, embedded_model_dir):
    """One real vLLM server for the module: the embedded base, runtime LoRA loading on."""
    require_vllm()
    from serving.process import free_port

    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    server = VllmServer.spawn_config(VllmConfig(embedded_model_dir, port=free_port(), max_lora_rank=16,
                                                max_loras=2, max_model_len=1024), log_path=log)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(vllm):
    from serving.client import ModelClient

    c = ModelClient(vllm.base_url, vllm.base_name, timeout=120, max_retries=0)
    yield c
    c.close()


def test_chat_through_the_openai_client_streaming_and_not(vllm, client):
    assert vllm.models() == ["threadtune/base"]
    whole = client.chat([{"role": "user", "content": "Say hello."}], max_tokens=8)
    assert whole.text and whole.completion_tokens <= 8 and whole.model == "threadtune/base"
    streamed = list(client.stream([{"role": "user", "content": "Say hello."}], max_tokens=8))
    assert len(streamed) > 1 and "".join(streamed) == whole.text  # greedy: the same words


def test_response_format_returns_json_of_the_schema(client):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 40}},
              "required": ["answer"], "additionalProperties": False}
    reply = client.chat([{"role": "user", "content": "Answer in JSON: what is 2+2?"}], max_tokens=40,
                        response_format={"type": "json_schema",
                                         "json_schema": {"name": "a", "schema": schema, "strict": True}})
    assert set(json.loads(reply.text)) == {"answer"}


def test_adapter_hot_loads_answers_the_trained_fact_and_unloads_with_no_restart(vllm, client, adapters):
    pid = vllm.pid
    assert "BLUEFIN" not in ask(client, "threadtune/base")
    assert vllm.serve_model("v1", None, adapters["fact"]) == "threadtune/v1"
    assert vllm.models() == ["threadtune/base", "threadtune/v1"]
    assert "BLUEFIN-42" in ask(client, "threadtune/v1")
    # promotion: v2 loads, v1 unloads; rollback reloads v1 (same weights, same name)
    assert vllm.serve_model("v2", None, adapters["flipped"]) == "threadtune/v2"
    assert vllm.models() == ["threadtune/base", "threadtune/v2"]
    assert "BLUEFIN-42" not in ask(client, "threadtune/v2")
    assert vllm.serve_model("v1", None, adapters["fact"]) == "threadtune/v1"
    assert vllm.models() == ["threadtune/base", "threadtune/v1"]
    assert "BLUEFIN-42" in ask(client, "threadtune/v1")
    assert vllm.pid == pid


def test_a_name_is_never_reused_for_other_weights(vllm, client, adapters):
    """vllm issue #42125: a reloaded name may keep serving the old weights."""
    vllm.serve_model("v1", None, adapters["fact"])
    with pytest.raises(ServingError, match="42125"):
        vllm.serve_model("v1", None, adapters["flipped"])
    assert "BLUEFIN-42" in ask(client, "threadtune/v1")


@pytest.mark.parametrize("bad, message", [
    ("rank32", "rank 32 exceeds the server's --max-lora-rank 16"),
    ("missing", "no adapter_config.json"),
    ("other_base", "trained on another base model"),
])
def test_a_bad_adapter_is_refused_and_the_old_one_keeps_serving(vllm, client, adapters, bad, message):
    vllm.serve_model("v1", None, adapters["fact"])
    path = adapters.get(bad, Path("/nonexistent/adapter"))
    with pytest.raises(ServingError, match=message):
        vllm.serve_model("v9", None, path)
    assert vllm.models() == ["threadtune/base", "threadtune/v1"] and vllm.model == "threadtune/v1"
    assert "BLUEFIN-42" in ask(client, "threadtune/v1")


def test_vllm_itself_refuses_what_slips_past_the_checks(vllm, client, adapters):
    """Straight to the runtime API, past threadtune's checks: vLLM answers an error, keeps running."""
    from serving.errors import ServerError

    with pytest.raises(ServerError, match="HTTP 4|HTTP 5"):
        vllm._post("/load_lora_adapter", {"lora_name": "threadtune/raw", "lora_path": str(adapters["rank32"])})
    assert vllm.alive() and "BLUEFIN-42" in ask(client, "threadtune/v1")


def test_eval_through_vllm_scores_the_adapter_as_vllm_serves_it(vllm, adapters):
    """`threadtune eval --server URL`: the adapter is hot-loaded there (unmerged) and scored."""
    from training.eval_server import vllm_for_eval
    from training.evaluate import EvalItem, evaluate

    items = [EvalItem(QUESTION, FACT), EvalItem("Which codename does project Zephyr have?", FACT)]
    assert "threadtune/v5" not in vllm.models()
    with vllm_for_eval("v5", vllm.cfg.base_model, adapters["fact"], url=vllm.base_url) as served:
        report = evaluate(items, base_model=str(vllm.cfg.base_model), adapter_path=str(adapters["fact"]),
                          system_prompt=None, retrieve=lambda q: [], systems=("base", "tuned"),
                          max_new_tokens=24, batch_size=2, served=served)
    assert served.tuned == "threadtune/v5" and "threadtune/v5" in vllm.models()
    tuned, base = report["systems"]["tuned"], report["systems"]["base"]
    assert tuned["fact_recall"] > base["fact_recall"]
    assert tuned["token_f1"] > base["token_f1"] and tuned["latency_s"] > 0
    assert "BLUEFIN-42" in report["examples"][0]["tuned"]
    vllm.unload_adapter("threadtune/v5")


def test_killed_mid_answer_the_bot_shows_retry_and_serve_restarts_it(
        vllm, adapters, answer_bot_factory, answer_settings, fake_slack, db):
    from tests.serving.test_answers_flow import action_value, final_update, mention, _text
    from threadtune.commands.serve import restart_if_dead

    vllm.serve_model("v1", None, adapters["fact"])
    watch(db)
    sender = answer_bot_factory(answer_settings.model_copy(update={
        "serving_url": vllm.base_url, "answer_max_tokens": 400, "answer_timeout_s": 120}))
    mention(sender, "Write a long story about the sea.", "1700003000.000100")
    # the answer is streaming into the placeholder: kill the whole server (engine included)
    deadline = time.monotonic() + 120
    while not fake_slack.calls_for("chat.update") and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = vllm.pid
    os.killpg(pid, signal.SIGKILL)
    final = final_update(fake_slack, timeout=60)
    assert "not answering" in _text(final)
    retry = action_value(final, "answer_retry")

    assert restart_if_dead(vllm)  # what `threadtune serve` does every few seconds
    assert vllm.pid != pid and vllm.models() == ["threadtune/base", "threadtune/v1"]
    sender.block_action("answer_retry", retry, user_id=MEMBER, channel=WATCHED, message_ts=final["ts"])
    again = final_update(fake_slack, n=2, timeout=120)
    assert "answer_up" in _text(again) and again["ts"] == final["ts"]
