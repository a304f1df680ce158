"""The curation CLI end to end on a real store: curate, add-doc, review, dataset."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from threadtune.cli import app
from threadtune.shell import set_settings
from tests.curation.helpers import vpn_thread


@pytest.fixture
def cli(settings, db):
    set_settings(settings)
    runner = CliRunner()

    def run(*args: str, code: int = 0):
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    yield run
    set_settings(None)


def test_curate_review_and_dataset_from_the_terminal(cli, db, tmp_path):
    vpn_thread(db)
    out = cli("curate", "--no-llm", "--json")
    assert json.loads(out.stdout)["candidates"] == {"pending": 1}
    listed = json.loads(cli("review", "list", "--status", "pending", "--json").stdout)
    assert set(listed[0]) >= {"id", "status", "question", "answer", "scores", "sources"}
    cid = str(listed[0]["id"])
    cli("review", "edit", cid, "--question", "How do I reset my VPN password?", "--as", "U0REVIEWER")
    assert "approved" in cli("review", "approve", cid, "--as", "U0REVIEWER").stdout
    shown = json.loads(cli("review", "show", cid, "--json").stdout)
    assert [h["action"] for h in shown["history"]] == ["edit", "approve"]
    created = cli("dataset", "create", "--json")
    ds = json.loads(created.stdout)
    assert ds["name"] == "v1" and ds["n_train"] + ds["n_eval"] == 1
    assert ds["system_prompt"]  # the persona goes into every example by default
    path = tmp_path / "v1.jsonl"
    cli("dataset", "export", "v1", "--format", "sharegpt", "--split", "all", "-o", str(path))
    assert json.loads(path.read_text().splitlines()[0])["conversations"][1]["from"] == "human"
    assert "v1" in cli("dataset", "list").stdout


def test_user_mistakes_are_one_line_errors_with_exit_code_2(cli, tmp_path):
    assert "does not exist" in cli("review", "approve", "42", code=2).output
    assert "reason" in cli("review", "reject", "42", code=2).output  # typer: missing --reason
    assert "--status" in cli("review", "list", "--status", "nope", code=2).output
    assert "no approved pairs" in cli("dataset", "create", code=2).output
    assert "no such file" in cli("add-doc", str(tmp_path / "missing.md"), code=2).output


def test_import_reports_bad_lines_and_add_doc_adds_a_source(cli, db, tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text(json.dumps({"question": "How do I get a parking badge?", "answer": "Ask reception for one."})
                    + "\nnot json\n")
    out = cli("dataset", "import", str(path), "--approved", "--as", "U0ADMIN")
    assert "1 added (1 approved" in out.stdout and "line 2: not valid JSON" in out.output
    doc = tmp_path / "guide.md"
    doc.write_text("# Guide\nParking badges come from reception.\n")
    assert "added document" in cli("add-doc", str(doc)).stdout
    assert db["documents"].count == 1
