"""Fixtures for training tests: a tiny random model built here, and stores holding dataset versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TEAM = "T0FAKE"


def add_dataset(db: Any, pairs: list[tuple[str, str]], *, n_eval: int = 2, name: str = "v1",
                version: int = 1, system_prompt: str | None = "Answer briefly.",
                team_id: str = TEAM, variants: list[tuple[str, str]] = ()) -> str:
    """Insert approved candidates and a frozen dataset version (as curation would); returns its id."""
    from curation.store import now, transaction

    dataset_id = f"ds{version:04d}" + "0" * 20
    with transaction(db):
        db["datasets"].insert({"id": dataset_id, "team_id": team_id, "version": version, "name": name,
                               "system_prompt": system_prompt, "n_train": len(pairs) - n_eval,
                               "n_eval": n_eval + len(variants), "meta": "{}", "created_by": "test",
                               "created_at": now()})
        for k, (question, answer) in enumerate(pairs):
            cid = db["candidates"].insert({"team_id": team_id, "question": question, "answer": answer,
                                           "status": "approved", "origin": "manual",
                                           "dedup_key": f"{dataset_id}-{k}", "created_at": now()}).last_pk
            db["dataset_items"].insert({"dataset_id": dataset_id, "team_id": team_id, "candidate_id": cid,
                                        "split": "eval" if k >= len(pairs) - n_eval else "train",
                                        "kind": "pair", "question": question, "answer": answer})
        for question, answer in variants:
            db["dataset_items"].insert({"dataset_id": dataset_id, "team_id": team_id, "candidate_id": None,
                                        "split": "eval", "kind": "variant", "question": question,
                                        "answer": answer})
    return dataset_id


def toy_pairs(n: int) -> list[tuple[str, str]]:
    """Pairs of uneven length about made-up tools."""
    return [(f"How do I restart service number {i}?",
             f"Run `svc restart {i}` and wait {i + 2} seconds. " * (1 + i % 3)) for i in range(n)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, embedded_model_dir) -> Path:
    """A 2-layer Llama with random weights and SmolLM2's tokenizer and chat template (~2 MB of weights)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture
def store_with_dataset(db):
    """The ``db`` fixture holding dataset v1: 10 train and 2 eval pairs plus one variant."""
    add_dataset(db, toy_pairs(12), variants=[("restart svc 11 how?", toy_pairs(12)[11][1])])
    return db


@pytest.fixture
def trained(tmp_path, tiny_model, store_with_dataset):
    """The dataset store plus v1: a 1-step adapter on the tiny model, registered like the worker does."""
    from training.config import resolve_config
    from curation.datasets import write_jsonl
    from training.data import load_dataset_messages
    from training.sft import RunSpec, train

    rows, _ = load_dataset_messages(store_with_dataset, TEAM, "v1")
    write_jsonl(rows, tmp_path / "train.jsonl")
    config = resolve_config("cpu-small", len(rows), {"max_steps": 1, "max_length": 128})
    result = train(RunSpec(config, str(tiny_model), str(tmp_path / "train.jsonl"), str(tmp_path / "run"), {}))
    from training import registry

    dataset_id = store_with_dataset.execute("select id from datasets").fetchone()[0]
    registry.register_model(store_with_dataset, TEAM, base_model=str(tiny_model),
                            adapter_path=result["adapter_path"], dataset_id=dataset_id)
    return store_with_dataset
