"""`/threadtune train|cancel|jobs|eval|models|promote|rollback` through the real bolt app and the fake
Slack, and the worker's status message (chat.update, throttled) and report upload."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from curation import jobs, model_versions
from curation.update_budget import UpdateBudget
from tests.conftest import ADMIN, MEMBER, REVIEWER
from tests.fakes.wait import stays
from tests.training.conftest import TEAM, add_dataset, toy_pairs
from training import worker
from training.evaluate import SYSTEMS
from training.notify import SlackNotifier


def _say(bot, fake_slack, text: str, user: str = ADMIN, channel: str = "C0OPS") -> dict:
    n = fake_slack.count("response_url")
    bot.command("/threadtune", text, user_id=user, channel_id=channel, response_url=fake_slack.response_url())
    return fake_slack.wait_for("response_url", n + 1)[-1].params


def _client(fake_slack):
    from slack_sdk import WebClient

    return WebClient(token="xoxb-test", base_url=fake_slack.api_url)


def test_members_cannot_train_cancel_promote_or_roll_back(bot, db, fake_slack):
    add_dataset(db, toy_pairs(4))
    for text in ("train v1", "cancel 1", "promote v1", "rollback", "eval v1"):
        reply = _say(bot, fake_slack, text, user=MEMBER)
        assert reply["response_type"] == "ephemeral" and "Only admins" in reply["text"], text
    assert jobs.list_jobs(db, TEAM) == [] and fake_slack.count("chat.postMessage") == 0


def test_an_admin_queues_training_with_a_status_message_and_an_audit_row(bot, db, fake_slack):
    add_dataset(db, toy_pairs(4))
    reply = _say(bot, fake_slack, "train v1 --preset cpu-small epochs=2 lora_r=8")
    assert "Queued training job #1" in reply["text"]
    job = jobs.get(db, 1, TEAM)
    assert job["status"] == "queued" and job["created_by"] == ADMIN
    assert job["args"]["dataset"] == "v1" and job["args"]["overrides"] == {"epochs": 2, "lora_r": 8}
    post = fake_slack.calls_for("chat.postMessage")[-1].params
    assert post["channel"] == "C0OPS" and "train cpu-small on v1: queued by" in post["text"]
    assert job["slack_channel"] == "C0OPS" and job["slack_ts"]
    assert db.execute("select actor, action, via from audit").fetchall() == [(ADMIN, "job.train", "slack")]


def test_an_unknown_dataset_or_preset_is_refused_and_nothing_is_queued(bot, db, fake_slack):
    add_dataset(db, toy_pairs(4))
    reply = _say(bot, fake_slack, "train v9 --preset gpu-huge")
    assert "dataset 'v9' not found" in reply["text"] and "known versions: v1" in reply["text"]
    assert "preset 'gpu-huge' is unknown; choose one of cpu-small, gpu-lora, gpu-qlora" in reply["text"]
    assert jobs.list_jobs(db, TEAM) == []


def test_training_without_any_dataset_says_how_to_make_one(bot, db, fake_slack):
    reply = _say(bot, fake_slack, "train")
    assert "dataset 'latest' not found" in reply["text"] and "run `threadtune dataset create`" in reply["text"]
    assert "/threadtune dataset" not in reply["text"]  # there is no such slash command
    assert jobs.list_jobs(db, TEAM) == []


def test_an_unknown_override_is_refused_at_once_with_the_valid_keys(bot, db, fake_slack):
    add_dataset(db, toy_pairs(4))
    reply = _say(bot, fake_slack, "train lr=0.1")
    assert "'lr' is not a config field (did you mean" in reply["text"]
    assert "valid keys: device, epochs, learning_rate" in reply["text"] and "lora_r" in reply["text"]
    # values are checked against the preset too, every problem in one reply
    reply = _say(bot, fake_slack, "train v1 lora_r=0 load_in_4bit=true epochs=oops")
    for part in ("lora_r must be at least 1", "load_in_4bit needs device 'cuda'", "epochs='oops' is not a float"):
        assert part in reply["text"], part
    assert jobs.list_jobs(db, TEAM) == [] and fake_slack.count("chat.postMessage") == 0


def test_cancel_and_the_job_list(bot, db, fake_slack):
    add_dataset(db, toy_pairs(4))
    _say(bot, fake_slack, "train")
    assert "Cancelling job #1" in _say(bot, fake_slack, "cancel 1")["text"]
    assert jobs.get(db, 1)["status"] == "cancelled"
    assert "already cancelled" in _say(bot, fake_slack, "cancel 1")["text"]
    assert "not found" in _say(bot, fake_slack, "cancel 42")["text"]
    assert "#1 train cancelled" in _say(bot, fake_slack, "jobs", user=MEMBER)["text"]


def test_the_models_list_in_slack_shows_the_bot_score_the_gate_reads(bot, db, fake_slack):
    from tests.training.test_registry import _bot_evaluated

    _bot_evaluated(db)
    text = _say(bot, fake_slack, "models", user=MEMBER)["text"]
    assert "`v1` *candidate*" in text and "token F1 0.700 bot on dataset:ds1" in text


def test_promotion_from_slack_is_applied_by_the_worker_and_reported_in_place(bot, db, fake_slack, settings):
    from tests.training.test_registry import _model

    _model(db, 0.4)
    assert "`v1` *candidate*" in _say(bot, fake_slack, "models", user=MEMBER)["text"]
    _say(bot, fake_slack, "promote v1")
    ctx = worker.WorkerContext(data_dir=settings.data_dir, models_dir=settings.models_dir,
                               notifier_for=lambda j: SlackNotifier(_client(fake_slack), j["slack_channel"],
                                                                    j["slack_ts"], budget=UpdateBudget(settings.db_path)))
    assert worker.run_admin_jobs(db, ctx) == 1
    assert model_versions.live_model(db, TEAM)["name"] == "v1"
    update = fake_slack.calls_for("chat.update")[-1].params
    assert update["ts"] == jobs.get(db, 1)["slack_ts"] and "#1 promote done → model v1" in update["text"]
    _say(bot, fake_slack, "rollback")
    worker.run_admin_jobs(db, ctx)
    assert model_versions.live_model(db, TEAM) is None
    assert "No live model" in _say(bot, fake_slack, "rollback")["text"]


def test_the_status_message_is_updated_at_most_every_ten_seconds(fake_slack, tmp_path):
    now = [0.0]
    notifier = SlackNotifier(_client(fake_slack), "C0OPS", None, clock=lambda: now[0],
                             budget=UpdateBudget(tmp_path / "store.db"))
    job = {"id": 7, "kind": "train", "status": "running", "progress": {}, "result": {}, "error": None}
    notifier.start(job)
    for step in range(1, 30):
        now[0] += 1.0
        notifier.progress(job, {"step": step, "total": 30, "loss": 1.0, "tokens_per_s": 50, "eta_s": 30 - step})
    assert fake_slack.count("chat.postMessage") == 1
    assert fake_slack.count("chat.update") == 2  # at 10 s and 20 s
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG fake")
    notifier.finish({**job, "status": "done", "result": {"model": "v3"}}, files=[chart])
    assert fake_slack.count("chat.update") == 3
    assert "done → model v3" in fake_slack.calls_for("chat.update")[-1].params["text"]
    assert fake_slack.count("files.completeUploadExternal") == 1 and fake_slack.count("upload") == 1


@pytest.mark.slow
def test_an_eval_queued_from_slack_ends_with_the_scores_and_the_chart(bot, trained, fake_slack, settings):
    db = trained
    assert "Queued evaluation job #1" in _say(bot, fake_slack, "eval v1")["text"]
    db.execute("update jobs set args = json_set(args, '$.max_new_tokens', 4) where id = 1")
    db.conn.commit()
    ctx = worker.WorkerContext(data_dir=settings.data_dir, models_dir=settings.models_dir,
                               notifier_for=lambda j: SlackNotifier(_client(fake_slack), j["slack_channel"],
                                                                    j["slack_ts"], budget=UpdateBudget(settings.db_path)))
    job = worker.run_one(db, ctx)
    assert job["status"] == "done", job["error"]
    assert set(job["result"]["systems"]) == set(SYSTEMS)  # the bot's own prompt among them
    assert "#1 eval done" in fake_slack.calls_for("chat.update")[-1].params["text"]
    complete = fake_slack.calls_for("files.completeUploadExternal")[-1].params
    assert complete["channel_id"] == "C0OPS" and json.loads(complete["files"])[0]["title"].endswith(".png")


def test_slack_errors_do_not_stop_the_job(fake_slack, tmp_path):
    notifier = SlackNotifier(_client(fake_slack), "C0OPS", None, min_interval_s=0,
                             budget=UpdateBudget(tmp_path / "store.db"))
    job = {"id": 8, "kind": "train", "status": "running", "progress": {}, "result": {}, "error": None}
    notifier.start(job)
    fake_slack.fail("chat.update", error="message_not_found", times=5)
    notifier.progress(job, {"step": 1, "total": 2})  # logged, not raised
    notifier.finish({**job, "status": "done"})


def _children() -> list[int]:
    """Processes whose parent is this test process (a model server the bot started would be one)."""
    me, out = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            out.append(int(stat.parent.name))
    return out


def test_curate_from_slack_is_queued_and_the_worker_reports_it_in_one_message(bot, db, fake_slack, slack_settings):
    from tests.curation.helpers import vpn_thread
    from tests.fakes.llm import FakeLLM
    from threadtune.commands.train import worker_context

    vpn_thread(db, channel_id="C0HELP")
    db.execute("update messages set team_id = ?", [TEAM])
    db.execute("update users set team_id = ?", [TEAM])
    db.conn.commit()
    before = _children()
    assert "Queued curation as job #1" in _say(bot, fake_slack, "curate", user=REVIEWER)["text"]
    job = jobs.get(db, 1, TEAM)
    assert (job["kind"], job["status"], job["args"], job["created_by"]) == ("curate", "queued", {"use_llm": True}, REVIEWER)
    status = fake_slack.calls_for("chat.postMessage")[-1].params
    assert status["channel"] == "C0OPS" and "curate: queued by" in status["text"] and job["slack_ts"]
    assert "already queued as job #1" in _say(bot, fake_slack, "curate", user=REVIEWER)["text"]
    assert "Only reviewers" in _say(bot, fake_slack, "curate", user=MEMBER)["text"]
    # the bot itself curates nothing and starts no model server
    stays(lambda: _children() == before and db["candidates"].count == 0, 1.0, what="a bot without children")
    with FakeLLM(['{"pairs": []}']) as llm:
        s = slack_settings.model_copy(update={"llm_base_url": llm.base_url, "llm_model": "fake-llm"})
        done = worker.run_one(db, worker_context(s, terminal=False))
    assert done["status"] == "done", done["error"]
    final = fake_slack.calls_for("chat.update")[-1].params
    assert final["ts"] == job["slack_ts"] and final["text"].startswith(":white_check_mark: #1 curate done: read 1 thread")
    assert "1 pending" in final["text"]
    assert [c["origin"] for c in db.query("select origin from candidates")] == ["deterministic"]
