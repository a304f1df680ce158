"""Evaluation: every system on the eval split or an eval file; Markdown, JSON and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.retrieval import query_words, top_pairs
from tests.training.conftest import TEAM, add_dataset, toy_pairs
from curation import model_versions
from training.errors import DatasetError
from curation.answer_prompt import build_messages
from training.evaluate import SYSTEMS, EvalItem, bar_chart, markdown_table, read_eval_file, score
from training.metrics import token_f1


@pytest.mark.slow
def test_the_eval_report_has_every_system_and_its_files(tmp_path, trained):
    from training.pipeline import evaluate_model

    report = evaluate_model(trained, TEAM, "latest", out_dir=tmp_path / "reports", max_new_tokens=6, batch_size=4)
    assert list(report["systems"]) == list(SYSTEMS)
    for name, metrics in report["systems"].items():
        if name.startswith("bot"):
            assert sum(metrics[m] for m in ("verified", "generated", "closest", "abstain")) == pytest.approx(1)
            continue
        assert set(metrics) == {"token_f1", "rouge_l", "fact_recall", "latency_s"}
        assert 0 <= metrics["token_f1"] <= 1 and metrics["latency_s"] > 0
    assert report["n"] == 3 and report["model"] == "v1" and report["split"].startswith("dataset:")
    for name, modes in report["final_modes"].items():  # the shares are of the modes answered in
        assert report["systems"][name]["closest"] == pytest.approx(modes.count("closest") / len(modes), abs=1e-3)
    for k, example in enumerate(report["examples"]):
        assert example["modes"] == {s: report["final_modes"][s][k] for s in ("bot-base", "bot")}
        assert example["mode"] == example["modes"]["bot"]
    saved = json.loads(Path(report["files"]["json"]).read_text())
    assert saved["systems"] == report["systems"]
    assert Path(report["files"]["chart"]).read_bytes()[:4] == b"\x89PNG"
    assert "| tuned+retrieval |" in Path(report["files"]["markdown"]).read_text()
    stored = model_versions.get_model(trained, TEAM, "v1")["metrics"]["evals"][report["split"]]
    assert stored["systems"] == report["systems"]


@pytest.mark.slow
def test_an_eval_file_is_scored_under_its_own_split(tmp_path, trained):
    from training.pipeline import evaluate_model

    path = tmp_path / "held-out.jsonl"
    path.write_text('{"question": "How to restart service 3?", "answer": "Run `svc restart 3`."}\n')
    report = evaluate_model(trained, TEAM, "v1", out_dir=tmp_path, eval_file=path, max_new_tokens=4)
    assert report["split"].startswith("file:") and report["n"] == 1 and len(report["systems"]) == len(SYSTEMS)


def test_bad_eval_file_lines_are_reported_by_number(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\nnot json\n{"question": "q"}\n')
    with pytest.raises(DatasetError, match="lines 2, 3"):
        read_eval_file(path)
    with pytest.raises(DatasetError, match="not found"):
        read_eval_file(tmp_path / "missing.jsonl")


def test_retrieval_finds_approved_pairs_of_the_same_team_only(db):
    add_dataset(db, toy_pairs(5))
    add_dataset(db, [("How do I restart service number 3 quickly?", "other team")], n_eval=0,
                team_id="T0OTHER", version=2, name="v1")
    db.execute("update candidates set status = 'rejected' where question like '%number 4?'")
    db.conn.commit()
    hits = top_pairs(db, TEAM, "restart service 3", k=3)
    assert hits[0]["question"] == "How do I restart service number 3?"
    assert len(hits) == 3 and all("number 4?" not in h["question"] for h in hits)
    assert all(h["answer"] != "other team" for h in hits)
    assert top_pairs(db, TEAM, '"AND OR NEAR(', k=3) == []  # FTS5 syntax in a question is just words
    assert query_words("what is it?") and query_words("") == []


def test_the_retrieval_prompt_puts_pairs_into_the_system_message():
    chat = build_messages("Be brief.", [{"question": "Q1", "answer": "A1"}], "How?")
    assert chat[0]["role"] == "system" and "Be brief." in chat[0]["content"] and "Q: Q1\nA: A1" in chat[0]["content"]
    assert build_messages(None, [], "How?") == [{"role": "user", "content": "How?"}]


def test_scores_table_and_chart_from_answers(tmp_path):
    items = [EvalItem("q1", "Use port 5432."), EvalItem("q2", "Restart it.")]
    metrics = score([("Use port 5432.", 0.2), ("no idea", 0.4)], items)
    assert metrics["token_f1"] == pytest.approx(0.5) and metrics["latency_s"] == pytest.approx(0.3)
    report = {"systems": {s: metrics for s in SYSTEMS if not s.startswith("bot")}, "n": 2, "split": "file:x"}
    table = markdown_table(report)
    assert table.count("\n") == 5 and "| base+retrieval | 0.500 |" in table
    assert bar_chart(report, tmp_path / "c.png").stat().st_size > 1000


def test_the_bot_system_scores_answered_questions_modes_wrong_facts_and_ood_abstention():
    from training.evaluate import score_bot

    items = [EvalItem("q1", "Up to 250 EUR needs no approval."), EvalItem("q2", "Run `make up`."),
             EvalItem("q3", "Use port 5432.")]
    texts = ["Up to 250 EUR needs no approval.", "Run `make up` on port 8080.", "I don't know", "", "x"]
    modes = ["verified", "generated", "abstain", "abstain", "generated"]
    m = score_bot(texts, [0.0, 1.0, 0.0, 0.0, 2.0], modes, items, 2, known=lambda terms: set())
    assert m["verified"] == m["generated"] == m["abstain"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["answered"] == pytest.approx(2 / 3, abs=1e-4) and m["ood_abstained"] == 0.5
    assert m["wrong_fact_rate"] == 0.5  # 8080 is in neither the reference nor an approved pair
    assert m["token_f1"] == pytest.approx((1 + token_f1(texts[1], items[1].reference)) / 2, abs=1e-4)
    assert score_bot(texts, [0.0] * 5, modes, items, 2, known=lambda terms: {"8080"})["wrong_fact_rate"] == 0
