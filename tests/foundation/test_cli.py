"""The CLI shell: init, status --json, doctor, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, data_dir: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("THREADTUNE_", "SLACK_"))}
    e.update({"THREADTUNE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"})
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "threadtune.cli", *args], cwd=data_dir.parent,
                          capture_output=True, text=True, env=e, timeout=300)


def test_init_then_status_json_has_the_contract_keys(tmp_path):
    data = tmp_path / "data"
    out = run_cli("init", "--skip-model", data_dir=data)
    assert out.returncode == 0, out.stderr
    out = run_cli("status", "--json", data_dir=data)
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout)
    for key in ("channels", "users", "messages", "threads", "candidates", "datasets", "models",
                "jobs", "live_model"):
        assert key in counts
    assert isinstance(counts["candidates"], dict) and counts["live_model"] is None


def test_status_without_init_is_a_one_line_error(tmp_path):
    out = run_cli("status", data_dir=tmp_path / "nowhere")
    assert out.returncode == 2
    assert "threadtune init" in out.stderr
    assert "Traceback" not in out.stderr


def test_invalid_setting_is_a_one_line_error_naming_the_variable(tmp_path):
    out = run_cli("status", data_dir=tmp_path, env={"THREADTUNE_SERVING_BACKEND": "tpu"})
    assert out.returncode == 2
    assert "THREADTUNE_SERVING_BACKEND" in out.stderr
    assert "Traceback" not in out.stderr


def test_doctor_explains_what_is_missing(tmp_path):
    data = tmp_path / "data"
    run_cli("init", "--skip-model", data_dir=data)
    out = run_cli("doctor", data_dir=data)
    assert out.returncode == 0, out.stderr
    assert "SLACK_BOT_TOKEN" in out.stdout
    assert "base model" in out.stdout and "cuda" in out.stdout


def test_doctor_checks_the_token_with_auth_test(tmp_path, fake_slack):
    data = tmp_path / "data"
    run_cli("init", "--skip-model", data_dir=data)
    out = run_cli("doctor", data_dir=data, env={"SLACK_BOT_TOKEN": "xoxb-test",
                                                "THREADTUNE_SLACK_API_URL": fake_slack.api_url})
    assert out.returncode == 0, out.stderr
    assert fake_slack.count("auth.test") == 1
    assert "T0FAKE" in out.stdout


def test_python_dash_m_threadtune_is_the_same_cli(tmp_path):
    out = subprocess.run([sys.executable, "-m", "threadtune", "--help"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "THREADTUNE_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "demo" in out.stdout and "ask" in out.stdout
