"""Jobs and strict Slack (#15): no job is queued where its status message cannot be posted, and the
worker's last update lands through a rate limit."""

from __future__ import annotations

from curation import jobs
from tests.conftest import ADMIN
from tests.training.conftest import TEAM, add_dataset, toy_pairs


def test_train_in_a_channel_the_bot_is_not_in_queues_nothing_and_says_why(bot, db, fake_slack):
    add_dataset(db, toy_pairs(4))
    fake_slack.add_channel("C0ELSEWHERE", "elsewhere", is_member=False)
    for attempt in range(2):  # a retry must not make a duplicate either
        bot.command("/threadtune", "train v1", user_id=ADMIN, channel_id="C0ELSEWHERE",
                    response_url=fake_slack.response_url())
        reply = fake_slack.wait_for("response_url", attempt + 1)[-1].params["text"]
        assert "not_in_channel" in reply and "/invite @threadtune" in reply and "Nothing was queued" in reply
    assert jobs.list_jobs(db, TEAM) == []


def test_the_workers_last_update_lands_through_a_rate_limit(settings, fake_slack):
    from threadtune.commands.train import worker_context

    s = settings.model_copy(update={"slack_api_url": fake_slack.api_url})
    job = {"id": 9, "team_id": TEAM, "kind": "train", "status": "running", "progress": {}, "result": {},
           "error": None, "slack_channel": "C0OPS", "slack_ts": None}
    notifier = worker_context(s, terminal=False).notifier_for(job)
    notifier.start(job)
    fake_slack.rate_limit("chat.update", retry_after=1)
    notifier.finish({**job, "status": "done", "result": {"model": "v2"}})
    last = fake_slack.posted[("C0OPS", notifier.ts)]
    assert last["text"].startswith(":white_check_mark:")
