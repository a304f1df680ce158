"""One chat.update budget per workspace, kept in the store and shared by every process: the bot and
the worker together stay under Slack's Tier 3 limit, and the last update of a message still lands."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from curation.update_budget import PER_MINUTE, RESERVE, WINDOW_S, UpdateBudget
from tests.fakes.slack import TEAM_ID


class Clock:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_progress_edits_stop_at_the_reserve_and_final_ones_use_it(db, settings):
    budget = UpdateBudget(settings.db_path, clock=Clock())
    assert sum(budget.take(TEAM_ID) for _ in range(PER_MINUTE)) == PER_MINUTE - RESERVE
    assert all(budget.take(TEAM_ID, final=True) for _ in range(RESERVE))
    assert budget.used(TEAM_ID) == PER_MINUTE
    assert budget.take("T0OTHER")  # another workspace has its own budget


def test_a_final_edit_waits_for_a_slot_when_the_minute_is_used_up(db, settings):
    clock = Clock()
    budget = UpdateBudget(settings.db_path, clock=clock, sleep=clock.sleep)
    for _ in range(PER_MINUTE):
        budget.take(TEAM_ID, final=True)
    start = clock.now
    assert budget.take(TEAM_ID, final=True)
    assert WINDOW_S - 1 <= clock.now - start <= WINDOW_S + 1
    assert budget.used(TEAM_ID) <= PER_MINUTE


def test_two_budgets_on_one_store_count_together(db, settings):
    clock = Clock()
    bot, worker = (UpdateBudget(settings.db_path, clock=clock) for _ in range(2))
    taken = [b.take(TEAM_ID) for _ in range(PER_MINUTE) for b in (bot, worker)]
    assert sum(taken) == PER_MINUTE - RESERVE
    assert bot.used(TEAM_ID) == worker.used(TEAM_ID) == PER_MINUTE - RESERVE
    clock.now += WINDOW_S
    assert bot.take(TEAM_ID) and worker.used(TEAM_ID) == 1  # a minute later the slots are free


def test_a_bad_budget_is_refused(db, settings):
    with pytest.raises(ValueError, match="reserve"):
        UpdateBudget(settings.db_path, per_minute=10, reserve=10)


#: A process that edits one status message EDITS times as fast as it can, then once more as final:
#: the worker through its SlackNotifier, the bot through a StatusMessage with the bot's budget.
SCRIPT = textwrap.dedent("""
    import sys
    from slack_sdk import WebClient
    from curation.update_budget import UpdateBudget

    role, api_url, db_path, team, edits = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    client = WebClient(token="xoxb-test", base_url=api_url)  # no retry handler: a 429 would show
    budget = UpdateBudget(db_path)
    if role == "worker":
        from training.notify import SlackNotifier
        job = {"id": 1, "kind": "train", "status": "running", "progress": {}, "result": {}, "error": None}
        notifier = SlackNotifier(client, "C0OPS", budget=budget, min_interval_s=0, team_id=team)
        notifier.start(job)
        for step in range(edits):
            notifier.progress(job, {"step": step, "total": edits})
        notifier.finish({**job, "status": "done", "result": {"model": "final-worker"}})
    else:
        from curation.status_message import StatusMessage
        message = StatusMessage(client, "C0OPS", budget=budget, team_id=team, min_interval_s=0)
        message.post("starting")
        for step in range(edits):
            message.update(f"step {step}")
        message.update("final-bot", final=True)
""")


def test_the_bot_and_the_worker_in_two_processes_share_one_budget_and_both_finals_land(
        db, settings, fake_slack):
    fake_slack.add_channel("C0OPS", "ops")
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, role, fake_slack.api_url, str(settings.db_path),
                               TEAM_ID, str(PER_MINUTE)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
             for role in ("worker", "bot")]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    updates = fake_slack.calls_for("chat.update")
    assert "ratelimited" not in fake_slack.refusals()
    assert len(updates) <= PER_MINUTE  # Slack allows ~50; each process alone would have taken 31
    last = {c.params["ts"]: c.params["text"] for c in updates}
    assert sorted("final-worker" in t or "final-bot" in t for t in last.values()) == [True, True]
    assert UpdateBudget(settings.db_path).used(TEAM_ID) == len(updates)
