"""`threadtune ask` and `threadtune serve` from the command line."""

from __future__ import annotations

import pytest

from tests.foundation.test_cli import run_cli
from tests.serving.conftest import approve_pair


@pytest.fixture
def data_dir(tmp_path):
    data = tmp_path / "data"
    out = run_cli("init", "--skip-model", data_dir=data)
    assert out.returncode == 0, out.stderr
    return data


def test_ask_answers_a_matching_question_verbatim_without_calling_the_model(data_dir, fake_llm):
    from curation.store import connect

    db = connect(data_dir / "threadtune.db")
    approve_pair(db, "Up to what amount can I expense without approval?",
                 "Expenses up to 250 EUR need no approval; above that, your manager approves.", team_id="T0LOCAL")
    db.execute("update candidates set approvals = ?, updated_at = ?", ['["U0ANNA"]', "2026-03-02T10:00:00"])
    db.conn.commit()
    db.close()
    fake_llm.script = ["Anything above 50 EUR needs review."]
    out = run_cli("ask", "Up to what amount can I expense something without approval?", data_dir=data_dir,
                  env={"THREADTUNE_SERVING_URL": fake_llm.base_url})
    assert out.returncode == 0, out.stderr
    assert "verified answer" in out.stdout and "approved by U0ANNA on 2026-03-02" in out.stdout
    assert "Expenses up to 250 EUR need no approval" in out.stdout and "above 50 EUR" not in out.stdout
    assert "Based on: https://fake.slack.com/archives/C0SUPPORT/p1700000000000100" in out.stdout
    assert "verified · model base" in out.stderr
    assert fake_llm.chat_requests() == []  # verbatim: no generation


def test_ask_marks_a_generated_answer_not_verified_and_quotes_the_closest_pair_for_a_garbled_one(
        data_dir, fake_llm):
    from curation.store import connect

    db = connect(data_dir / "threadtune.db")
    approve_pair(db, "How do I submit an expense report for travel?",
                 "Use the Expenses app and attach every receipt; reports up to 250 EUR are paid monthly.",
                 team_id="T0LOCAL")
    db.close()
    fake_llm.script = ["Use the Expenses app and attach every receipt. Reports up to 250 EUR are paid monthly.",
                       "Use the Expenses app and attach every receipt. Submit them within 45 days."]
    out = run_cli("ask", "is there a deadline for travel expense reports after a trip?", data_dir=data_dir,
                  env={"THREADTUNE_SERVING_URL": fake_llm.base_url})
    assert out.returncode == 0, out.stderr
    assert "Use the Expenses app and attach every receipt. Reports up to 250 EUR" in out.stdout
    assert "not verified" in out.stdout and "verified answer" not in out.stdout and "Closest" not in out.stdout
    assert "generated · model base" in out.stderr
    system = fake_llm.chat_requests()[0]["messages"][0]["content"]
    assert "Approved answers" in system and "250 EUR" in system
    # a figure no retrieved pair holds (45): the closest approved answer is quoted word for word,
    # labelled with the question it was approved for (not as verified), and cited
    out = run_cli("ask", "is there a deadline for travel expense reports after a trip?", data_dir=data_dir,
                  env={"THREADTUNE_SERVING_URL": fake_llm.base_url})
    assert out.returncode == 0, out.stderr
    assert ("Closest approved answer, not verified for your question: the team approved it for “How do I "
            "submit an expense report for travel?”") in out.stdout
    assert "reports up to 250 EUR are paid monthly." in out.stdout and "45" not in out.stdout
    assert "verified answer" not in out.stdout and "Based on: https://fake.slack.com/" in out.stdout
    assert "closest · model base" in out.stderr and "left out what the approved answers do not support: 45" in out.stderr


def test_ask_abstains_when_no_approved_pair_is_relevant(data_dir, fake_llm):
    from curation.store import connect

    db = connect(data_dir / "threadtune.db")
    approve_pair(db, "How do I reset my password?", "Use the Forgot password link.", team_id="T0LOCAL")
    db.close()
    out = run_cli("ask", "What is the capital of Australia?", data_dir=data_dir,
                  env={"THREADTUNE_SERVING_URL": fake_llm.base_url})
    assert out.returncode == 0, out.stderr
    assert "I don't know this one yet" in out.stdout and "abstain" in out.stderr
    assert fake_llm.chat_requests() == []


def test_ask_uses_the_only_workspace_of_the_data_dir_and_names_them_when_several(data_dir, fake_llm):
    from curation.store import connect

    db = connect(data_dir / "threadtune.db")
    approve_pair(db, "How do I reset my password?", "Use the Forgot password link.", team_id="T0ACME")
    db.close()
    out = run_cli("ask", "How do I reset my password?", data_dir=data_dir,
                  env={"THREADTUNE_SERVING_URL": fake_llm.base_url})
    assert out.returncode == 0, out.stderr
    assert "Use the Forgot password link." in out.stdout and "asking workspace T0ACME" in out.stderr
    db = connect(data_dir / "threadtune.db")
    approve_pair(db, "How do I reset my VPN?", "Run vpn-reset.", team_id="T0OTHER")
    db.close()
    out = run_cli("ask", "How do I reset my password?", data_dir=data_dir,
                  env={"THREADTUNE_SERVING_URL": fake_llm.base_url})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "2 workspaces (T0ACME, T0OTHER)" in out.stderr and "--team" in out.stderr
    out = run_cli("--team", "T0OTHER", "ask", "How do I reset my VPN?", data_dir=data_dir,
                  env={"THREADTUNE_SERVING_URL": fake_llm.base_url})
    assert out.returncode == 0 and "Run vpn-reset." in out.stdout


def test_ask_without_retrieval_sends_no_pairs(data_dir, fake_llm):
    out = run_cli("ask", "--no-retrieval", "anything?", data_dir=data_dir,
                  env={"THREADTUNE_SERVING_URL": fake_llm.base_url})
    assert out.returncode == 0, out.stderr
    assert "Approved answers" not in fake_llm.chat_requests()[0]["messages"][0]["content"]


def test_serve_with_a_missing_adapter_is_a_one_line_error(data_dir, embedded_model_dir):
    from curation.store import connect

    db = connect(data_dir / "threadtune.db")
    db["models"].insert({"team_id": "T0LOCAL", "version": 1, "name": "v1", "base_model": str(embedded_model_dir),
                         "adapter_path": str(data_dir / "gone"), "status": "live"})
    db.close()
    out = run_cli("serve", "--once", "--backend", "embedded", data_dir=data_dir)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "adapter of live model v1 is missing" in out.stderr and "rollback" in out.stderr


def test_serve_attach_hot_loads_the_live_adapter(data_dir, fake_llm, embedded_model_dir, tmp_path):
    import json

    from curation.store import connect

    adapter = tmp_path / "v1"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8}))
    db = connect(data_dir / "threadtune.db")
    db["models"].insert({"team_id": "T0LOCAL", "version": 1, "name": "v1", "base_model": str(embedded_model_dir),
                         "adapter_path": str(adapter), "status": "live"})
    db.close()
    out = run_cli("serve", "--once", "--url", fake_llm.base_url, data_dir=data_dir)
    assert out.returncode == 0, out.stderr
    assert "serving threadtune/v1" in out.stdout
    assert ("POST", "/v1/load_lora_adapter", {"lora_name": "threadtune/v1", "lora_path": str(adapter)}) \
        in fake_llm.calls


@pytest.mark.slow
def test_serve_once_starts_the_embedded_server(data_dir, embedded_model_dir):
    out = run_cli("serve", "--backend", "embedded", "--once", "--port", "0", data_dir=data_dir,
                  env={"THREADTUNE_BASE_MODEL": str(embedded_model_dir)})
    assert out.returncode == 0, out.stderr
    assert "serving threadtune/base at http://127.0.0.1:" in out.stdout


def test_serve_reloads_on_promote_and_rollback(tmp_path, fake_llm, embedded_model_dir, settings, db):
    """The watch loop of `threadtune serve`, one check at a time, against the vLLM stand-in."""
    import json

    from serving.vllm import VllmServer
    from threadtune.commands.serve import reload_if_changed

    s = settings.model_copy(update={"base_model": str(embedded_model_dir)})
    server = VllmServer.attach(fake_llm.base_url)
    current = reload_if_changed(s, db, server, (None, None))
    assert current == (None, None) and not [r for r in fake_llm.calls if "lora" in r[1]]
    adapters = {}
    for v in ("v1", "v2"):
        adapters[v] = tmp_path / v
        adapters[v].mkdir()
        (adapters[v] / "adapter_config.json").write_text(json.dumps({"r": 8}))
    db["models"].insert({"team_id": s.team_id, "version": 1, "name": "v1", "base_model": str(embedded_model_dir),
                         "adapter_path": str(adapters["v1"]), "status": "live", "promoted_at": "1"})
    current = reload_if_changed(s, db, server, current)
    assert current[0] == "v1" and fake_llm.served == ["threadtune/base", "threadtune/v1"]
    db.execute("update models set status = 'retired'")
    db["models"].insert({"team_id": s.team_id, "version": 2, "name": "v2", "base_model": str(embedded_model_dir),
                         "adapter_path": str(adapters["v2"]), "status": "live", "promoted_at": "2"})
    db.conn.commit()
    current = reload_if_changed(s, db, server, current)
    assert current[0] == "v2" and fake_llm.served == ["threadtune/base", "threadtune/v2"]
    db.execute("update models set status = 'retired'")  # rollback to the base model
    db.conn.commit()
    assert reload_if_changed(s, db, server, current) == (None, None)
    assert fake_llm.served == ["threadtune/base"]
    fake_llm.stop()  # a failed reload keeps the old state and is retried later
    db.execute("update models set status = 'live' where name = 'v2'")
    db.conn.commit()
    assert reload_if_changed(s, db, server, (None, None)) == (None, None)


def test_live_server_uses_a_running_server_and_names_the_live_model(settings, db, fake_llm):
    from threadtune.commands.serve import live_server

    db["models"].insert({"team_id": settings.team_id, "version": 2, "name": "v2", "base_model": "embedded",
                         "adapter_path": "/x", "status": "live", "promoted_at": "1"})
    s = settings.model_copy(update={"serving_url": fake_llm.base_url})
    with live_server(s, db) as (url, model):
        assert (url, model) == (fake_llm.base_url, "threadtune/v2")
