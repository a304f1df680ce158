"""The demo's wiring (the end-to-end run is `threadtune demo --fast` in .ci/run)."""

from __future__ import annotations

import pytest

from threadtune.demo import MARKER, WORKSPACE, DemoError, demo_settings, fresh_workdir


def test_fresh_workdir_refuses_a_foreign_non_empty_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("do not delete")
    with pytest.raises(DemoError, match="not a demo folder"):
        fresh_workdir(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "do not delete"


def test_fresh_workdir_wipes_an_earlier_demo(tmp_path):
    work = fresh_workdir(tmp_path / "demo")
    (work / "old.db").write_text("x")
    again = fresh_workdir(tmp_path / "demo")
    assert not (again / "old.db").exists() and (again / MARKER).exists()


def test_demo_settings_never_touch_the_users_data_or_slack(settings, tmp_path):
    s = demo_settings(settings, tmp_path)
    assert s.data_dir == tmp_path / "data"
    assert s.slack_bot_token is None and s.llm_base_url is None
    assert s.team_id != settings.team_id


def test_demo_workspace_and_heldout_questions_ship_with_the_repo():
    assert (WORKSPACE / "channels.json").is_file()
    assert (WORKSPACE / "heldout.jsonl").read_text().count("\n") >= 10
    assert (WORKSPACE / "handbook.md").is_file()


def test_demo_refuses_a_missing_workspace(settings, tmp_path):
    from threadtune.demo import DemoOptions, run_demo

    with pytest.raises(DemoError, match="workspace is missing"):
        run_demo(settings, DemoOptions(workdir=tmp_path / "d", workspace=tmp_path / "nope"))


def test_demo_reviewer_rejects_statements_and_approves_questions():
    from threadtune.demo import demo_review

    assert demo_review({"question": "How do I reset my VPN?"}) is None
    assert "not a question" in demo_review({"question": "*Office move* From Monday we work in HQ."})
