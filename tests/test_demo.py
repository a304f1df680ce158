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


def test_the_demo_quotes_the_closest_approved_answer_when_every_figure_the_model_wrote_is_wrong(settings, tmp_path):
    # the demo's expense question (30 Nov): the approved 250 EUR pair retrieved first with its match
    # (0.42) below verify, the tuned model wrote 200 and 100 EUR, both sentences were left out, and
    # the demo printed "[abstain] I don't know this one yet" above the 250 EUR reference
    import json

    from curation.store import connect
    from tests.fakes.llm import FakeLLM
    from tests.serving.conftest import approve_pair
    from threadtune.demo_serving import serve_and_ask

    db = connect(tmp_path / "threadtune.db")
    limit = ("250 EUR. Up to that you just submit the receipt in Ledger within 30 days; above it, your "
             "manager has to approve it in Ledger.")
    approve_pair(db, "what's the limit for expenses before I need sign-off?", limit, team_id="T0ACME")
    approve_pair(db, "What's the hotel limit for business trips?",
                 "Hotels up to 160 EUR per night are fine without approval.", team_id="T0ACME")
    approve_pair(db, "vpn broken after my laptop reinstall, is there a self service thing?",
                 "No ticket needed: reset your VPN profile at https://vpn.acme.internal/reset.", team_id="T0ACME")
    heldout = tmp_path / "heldout.jsonl"
    question = "Up to what amount can I expense something without my manager signing off?"
    heldout.write_text(json.dumps({"question": question, "answer": limit}) + "\n")

    class Attached:  # a running server the demo serves the trained model on (serving.backend.Backend)
        def __init__(self, fake: FakeLLM) -> None:
            self.base_url, self.model = fake.base_url, "threadtune/v1"

        def serve_model(self, name, base_path, adapter_path) -> str:
            return self.model

    with FakeLLM("You can expense up to 200 EUR. Above 100 EUR your manager signs off.") as fake:
        rows, _ = serve_and_ask(settings, db, "T0ACME", {"name": "v1", "base_model": str(tmp_path),
                                                         "adapter_path": str(tmp_path)},
                                heldout, n=1, update=lambda *a, **k: None, max_tokens=32, server=Attached(fake))
        assert len(fake.chat_requests()) == 1  # the model was asked: the match is below verify
    row = rows[0]
    assert row["tuned"] == limit and "200" not in row["tuned"] + row["mode"]
    assert row["mode"] == "closest (approved for “what's the limit for expenses before I need sign-off?”)"
    assert row["cited"] == "https://fake.slack.com/archives/C0SUPPORT/p1700000000000100"
