"""Dataset versions from the store as TRL messages rows."""

from __future__ import annotations

import pytest

from curation.errors import NotFound
from tests.training.conftest import TEAM, add_dataset, toy_pairs
from training.data import load_dataset_messages, pair_of
from training.errors import DatasetError


def test_rows_carry_the_system_prompt_question_and_answer(db):
    add_dataset(db, [("Q1?", "A1."), ("Q2?", "A2."), ("Q3?", "A3.")], n_eval=1, system_prompt="Be kind.")
    train, evals = load_dataset_messages(db, TEAM, "v1")
    assert train[0] == {"messages": [{"role": "system", "content": "Be kind."},
                                     {"role": "user", "content": "Q1?"},
                                     {"role": "assistant", "content": "A1."}]}
    assert [pair_of(r) for r in evals] == [("Q3?", "A3.")]


def test_without_a_system_prompt_rows_start_with_the_user(db):
    add_dataset(db, toy_pairs(3), n_eval=0, system_prompt=None)
    train, _ = load_dataset_messages(db, TEAM, "latest")
    assert [m["role"] for m in train[0]["messages"]] == ["user", "assistant"]


def test_variants_go_to_the_eval_split(store_with_dataset):
    train, evals = load_dataset_messages(store_with_dataset, TEAM, "v1")
    assert len(train) == 10 and len(evals) == 3
    assert pair_of(evals[-1])[0] == "restart svc 11 how?"


def test_an_unknown_version_lists_the_known_ones(db):
    """Versions are named as curation.dataset_lookup reads them (tests/curation/test_dataset_lookup.py)."""
    add_dataset(db, toy_pairs(3))
    with pytest.raises(NotFound, match="'v9' not found.*known versions: v1"):
        load_dataset_messages(db, TEAM, "v9")


def test_an_empty_train_split_is_refused(db):
    add_dataset(db, toy_pairs(2), n_eval=2)
    with pytest.raises(DatasetError, match="no train rows"):
        load_dataset_messages(db, TEAM, "v1")


def test_a_dataset_frozen_by_curation_loads_like_its_openai_export(db):
    from curation.datasets import create_dataset, export_rows
    from curation.store import now

    for k, (question, answer) in enumerate(toy_pairs(20)):
        db["candidates"].insert({"team_id": TEAM, "question": question, "answer": answer, "status": "approved",
                                 "origin": "manual", "dedup_key": f"k{k}", "created_at": now()})
    db.conn.commit()
    created = create_dataset(db, TEAM, system_prompt="Be brief.")
    train, evals = load_dataset_messages(db, TEAM, created["name"])
    assert train == export_rows(db, TEAM, created["name"], "openai", "train")
    assert evals == export_rows(db, TEAM, created["name"], "openai", "eval")
    assert len(train) == created["n_train"] and len(evals) == created["n_eval"]
