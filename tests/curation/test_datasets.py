"""Datasets: immutable content-hash versions, deterministic splits, exports, imports."""

from __future__ import annotations

import json

import pytest

from curation import review
from curation.candidates import add_candidate
from curation.datasets import (
    create_dataset, export_rows, import_jsonl, list_datasets, split_of, write_jsonl,
)
from curation.dataset_lookup import resolve_dataset
from curation.errors import CurationError, NotFound

TEAM = "T1"


def approved_pairs(db, n: int, team: str = TEAM) -> list[int]:
    ids = []
    for i in range(n):
        cid = add_candidate(db, team, f"How do I configure service number {i} for logging?",
                            f"Set the logging option of service {i} in its settings page.", origin="manual").id
        review.approve(db, team, cid, "U1")
        ids.append(cid)
    return ids


def test_same_approved_pairs_give_the_same_version_and_new_pairs_a_new_one(db):
    approved_pairs(db, 6)
    v1 = create_dataset(db, TEAM, created_by="U1")
    again = create_dataset(db, TEAM, created_by="U1")
    assert v1["created"] and not again["created"] and again["id"] == v1["id"]
    assert v1["name"] == "v1" and len(v1["id"]) == 64
    extra = add_candidate(db, TEAM, "How do I configure the extra thing?", "Open the extra settings page.",
                          origin="manual").id
    review.approve(db, TEAM, extra, "U1")
    v2 = create_dataset(db, TEAM, created_by="U1")
    assert v2["name"] == "v2" and v2["id"] != v1["id"]
    assert [d["name"] for d in list_datasets(db, TEAM)] == ["v1", "v2"]
    # v1 is frozen: its items did not change
    assert db.execute("select count(*) from dataset_items where dataset_id = ?", [v1["id"]]).fetchone()[0] == 6


def test_split_is_deterministic_and_variants_go_to_eval(db):
    ids = approved_pairs(db, 20)
    variant = add_candidate(db, TEAM, "How can I configure service number 3 for logging", "Something else here.",
                            origin="manual")
    assert variant.status == "variant" and variant.variant_of == ids[3]
    ds = create_dataset(db, TEAM)
    items = list(db.query("select candidate_id, split, kind, answer from dataset_items where dataset_id = ?",
                          [ds["id"]]))
    v = [i for i in items if i["kind"] == "variant"]
    assert v == [{"candidate_id": variant.id, "split": "eval", "kind": "variant",
                  "answer": "Set the logging option of service 3 in its settings page."}]
    for i in items:
        if i["kind"] == "pair":
            q = db["candidates"].get(i["candidate_id"])["question"]
            assert i["split"] == split_of(q)
    assert ds["n_eval"] >= 2 and ds["n_train"] + ds["n_eval"] == 21


def test_stale_and_unapproved_pairs_are_left_out(db):
    ids = approved_pairs(db, 5)
    db["candidates"].update(ids[0], {"stale": 1, "stale_reason": "deleted"})
    add_candidate(db, TEAM, "How do I do the pending thing?", "Pending answer text here.", origin="manual")
    ds = create_dataset(db, TEAM)
    got = {r[0] for r in db.execute("select candidate_id from dataset_items where dataset_id = ?", [ds["id"]])}
    assert got == set(ids[1:])


def test_no_approved_pairs_is_a_clear_error(db):
    with pytest.raises(CurationError, match="no approved pairs"):
        create_dataset(db, TEAM)


def test_export_formats_with_system_prompt(db, tmp_path):
    approved_pairs(db, 5)
    create_dataset(db, TEAM, system_prompt="You are Acme's helper.")
    rows = export_rows(db, TEAM, "v1", "openai", split="all")
    assert rows[0]["messages"][0] == {"role": "system", "content": "You are Acme's helper."}
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]
    share = export_rows(db, TEAM, "1", "sharegpt", split="all")[0]["conversations"]
    assert [t["from"] for t in share] == ["system", "human", "gpt"]
    alpaca = export_rows(db, TEAM, "v1", "alpaca", split="all")[0]
    assert set(alpaca) == {"instruction", "input", "output", "system"}
    path = tmp_path / "out.jsonl"
    assert write_jsonl(rows, path) == 5
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows
    with pytest.raises(CurationError, match="unknown format"):
        export_rows(db, TEAM, "v1", "csv")
    with pytest.raises(NotFound, match="v1"):
        resolve_dataset(db, TEAM, "v9")


def test_import_keeps_good_rows_and_reports_bad_lines(db, tmp_path):
    path = tmp_path / "faq.jsonl"
    lines = [
        json.dumps({"question": "How do I request a new laptop?", "answer": "File a ticket in the IT portal."}),
        "{not json",
        json.dumps({"messages": [{"role": "user", "content": "Where is the wiki hosted?"},
                                 {"role": "assistant", "content": "At wiki.internal, behind the VPN."}]}),
        json.dumps({"question": "", "answer": "orphan answer text"}),
        "",
        json.dumps(["a", "list"]),
        json.dumps({"instruction": "How do I book a meeting room?", "input": "", "output": "Use the room calendar."}),
        json.dumps({"foo": "bar"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    report = import_jsonl(db, TEAM, path)
    assert report.added == 3
    assert [n for n, _ in report.errors] == [2, 4, 6, 8]
    assert "not valid JSON" in report.errors[0][1]
    again = import_jsonl(db, TEAM, path)
    assert again.added == 0 and again.duplicates == 3


def test_import_approved_goes_straight_to_approved_and_is_audited(db, tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text(json.dumps({"question": "How do I request a new laptop?",
                                "answer": "File a ticket in the IT portal."}) + "\n")
    report = import_jsonl(db, TEAM, path, approved=True, actor="U0ADMIN")
    assert report.approved == 1
    assert db["candidates"].get(report.ids[0])["status"] == "approved"
    actions = [r["action"] for r in db.query("select action from reviews where candidate_id = ?", [report.ids[0]])]
    assert actions == ["import_approved"]
    audit = list(db.query("select actor, action from audit where action = 'dataset.import_approved'"))
    assert audit == [{"actor": "U0ADMIN", "action": "dataset.import_approved"}]


def test_real_faq_imports_with_duplicate_ids_and_exports_round_trip(db, tmp_path, shared_data):
    pytest.importorskip("rapidfuzz")
    src = shared_data / "datatalksclub-faq" / "faq-de-ml.jsonl"
    report = import_jsonl(db, TEAM, src, approved=True, actor="U0ADMIN")
    assert report.added > 700 and report.approved > 600
    ds = create_dataset(db, TEAM)
    out = tmp_path / "train.jsonl"
    write_jsonl(export_rows(db, TEAM, ds["name"], "openai", split="all"), out)
    back = import_jsonl(db, "T2", out)
    assert not back.errors and back.added + back.duplicates == ds["n_train"] + ds["n_eval"]


test_real_faq_imports_with_duplicate_ids_and_exports_round_trip = pytest.mark.realdata(
    test_real_faq_imports_with_duplicate_ids_and_exports_round_trip)


@pytest.mark.slow
def test_openai_export_loads_into_trl_sft_trainer(db, tmp_path, embedded_model_dir):
    approved_pairs(db, 5)
    create_dataset(db, TEAM, system_prompt="You are helpful.")
    path = tmp_path / "train.jsonl"
    write_jsonl(export_rows(db, TEAM, "v1", "openai", split="all"), path)
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    data = load_dataset("json", data_files=str(path), split="train")
    trainer = SFTTrainer(model=str(embedded_model_dir), train_dataset=data,
                         args=SFTConfig(output_dir=str(tmp_path / "o"), max_steps=1, report_to=[],
                                        per_device_train_batch_size=1, use_cpu=True,
                                        dataloader_num_workers=0, save_strategy="no"))
    sample = trainer.train_dataset[0]
    assert "input_ids" in sample and len(sample["input_ids"]) > 10
