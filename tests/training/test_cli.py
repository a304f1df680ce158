"""`threadtune train|jobs|models|eval` in-process through typer's runner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.training.conftest import TEAM, add_dataset, toy_pairs
from threadtune.cli import app
from threadtune.shell import set_settings

runner = CliRunner()


@pytest.fixture
def cli(settings, db, tmp_path):
    """Run the CLI against the test store; the base model is a stand-in folder (queueing only)."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    (base / "model.safetensors").write_bytes(b"")
    set_settings(settings.model_copy(update={"team_id": TEAM, "base_model": str(base)}))

    def run(*args: str):
        return runner.invoke(app, list(args))

    yield run
    set_settings(None)


def test_train_queues_a_job_that_jobs_lists_cancels_and_resumes(cli, db):
    add_dataset(db, toy_pairs(6))
    out = cli("train", "--dataset", "v1", "--set", "epochs=2")
    assert out.exit_code == 0, out.output
    assert "queued job 1: cpu-small on dataset v1 (4 pairs as 8 question forms, 2 epochs" in out.output
    assert "#1 train queued" in cli("jobs", "list").output
    assert "#1 train cancelled" in cli("jobs", "cancel", "1").output
    assert "#1 train queued" in cli("jobs", "resume", "1").output
    shown = json.loads(cli("jobs", "show", "1").output)
    assert shown["args"]["overrides"] == {"epochs": 2} and shown["args"]["resume"] is True


def test_bad_train_input_is_one_line_with_exit_code_2(cli, db):
    out = cli("train", "--dataset", "v4", "--preset", "tpu-giant")
    assert out.exit_code == 2
    assert "dataset 'v4' not found" in out.output and "preset 'tpu-giant' is unknown" in out.output
    assert "Traceback" not in out.output
    out = cli("train", "--set", "lora_rank=4")
    assert out.exit_code == 2 and "'lora_rank' is not a config field" in out.output
    assert db["jobs"].count == 0


def test_help_config_lists_every_field(cli):
    out = cli("train", "--help-config")
    assert out.exit_code == 0 and "lora_r:" in out.output and "packing:" in out.output


def test_models_promote_is_gated_and_rollback_restores(cli, db):
    from tests.training.test_registry import _model

    assert "no models yet" in cli("models", "list").output
    _model(db, None)
    out = cli("models", "promote", "v1")
    assert out.exit_code == 2 and "no eval results" in out.output
    assert "v1 is live" in cli("models", "promote", "v1", "--force").output
    assert "live" in cli("models", "list").output
    listed = json.loads(cli("models", "list", "--json").output)
    assert listed[0]["name"] == "v1" and listed[0]["status"] == "live"
    assert "the base model" in cli("models", "rollback").output
    assert cli("models", "rollback").exit_code == 2


def test_models_list_shows_the_score_promotion_reads_the_bot_system(cli, db):
    from tests.training.test_registry import _bot_evaluated

    _bot_evaluated(db)
    out = cli("models", "list")
    assert out.exit_code == 0, out.output
    # the bot system's score (what users get and what the gate compares), not the adapter alone's
    assert "0.700 bot on dataset:ds1" in out.output and "0.500" not in out.output


def test_eval_of_an_unknown_model_is_a_one_line_error(cli, db):
    out = cli("eval", "v3")
    assert out.exit_code == 2 and "model 'v3' not found" in out.output


@pytest.mark.slow
def test_eval_json_has_the_documented_schema(cli, trained, settings, tmp_path):
    out = cli("eval", "latest", "--json", "--max-new-tokens", "4", "--out", str(tmp_path / "r"))
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert set(report["systems"]) == {"base", "base+retrieval", "tuned", "tuned+retrieval", "bot-base", "bot"}
    for metrics in report["systems"].values():
        assert {"token_f1", "rouge_l", "fact_recall", "latency_s"} <= set(metrics)
    assert report["model"] == "v1" and (tmp_path / "r").is_dir()


@pytest.mark.slow
def test_eval_prints_the_bot_modes_and_the_threshold_curve(cli, trained, settings, tmp_path):
    ood = tmp_path / "ood.jsonl"
    ood.write_text('{"question": "What is the capital of Australia?"}\n')
    out = cli("eval", "latest", "--ood-file", str(ood), "--max-new-tokens", "4", "--out", str(tmp_path / "r"))
    assert out.exit_code == 0, out.output
    assert "| bot |" in out.output and "OOD abstained" in out.output
    assert "answer thresholds on these questions" in out.output and "setting verify" in out.output
    assert "## Answer thresholds" in next((tmp_path / "r").glob("*.md")).read_text()


def test_eval_with_a_bad_ood_file_is_a_one_line_error(cli, db, tmp_path):
    from training import registry

    add_dataset(db, toy_pairs(4))
    dataset_id = db.execute("select id from datasets").fetchone()[0]
    registry.register_model(db, TEAM, base_model="/m/base", adapter_path="/m/a", dataset_id=dataset_id)
    ood = tmp_path / "ood.jsonl"
    ood.write_text('{"question": "fine?"}\nnot json\n')
    out = cli("eval", "v1", "--ood-file", str(ood))
    assert out.exit_code == 2 and "line" in out.output and "2" in out.output and "Traceback" not in out.output
    out = cli("eval", "v1", "--ood-file", str(tmp_path / "missing.jsonl"))
    assert out.exit_code == 2 and "not found" in out.output


@pytest.mark.slow
def test_train_now_runs_in_the_foreground_and_registers_a_model(cli, db, settings, tiny_model):
    add_dataset(db, toy_pairs(6))
    set_settings(settings.model_copy(update={"team_id": TEAM, "base_model": str(tiny_model)}))
    out = cli("train", "--now", "--set", "max_steps=1", "--set", "max_length=128")
    assert out.exit_code == 0, out.output
    assert "training now: cpu-small on dataset v1" in out.output and "#1 train done → model v1" in out.output
    assert json.loads(cli("models", "list", "--json").output)[0]["job_id"] == 1
