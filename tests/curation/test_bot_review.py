"""Review in Slack, through the real bolt app over HTTP, signed requests and the fake Slack."""

from __future__ import annotations

import json

import pytest
from slack_sdk import WebClient

from bot import review_blocks as rb
from bot.context import BotContext
from bot.rate_limit import pacer
from bot.review import post_candidates
from curation.candidates import add_candidate, get_candidate
from tests.conftest import MEMBER, REVIEWER
from tests.fakes.slack import TEAM_ID
from tests.fakes.wait import eventually, stays

Q, A = "How do I reset my VPN password?", "Run `vpnctl reset --user you` and wait 15 minutes."


def candidate(db, question: str = Q, answer: str = A, ts: str = "1700000100.000100") -> int:
    return add_candidate(db, TEAM_ID, question, answer, origin="deterministic",
                         sources=[{"kind": "message", "channel_id": "C0HELP", "ts": ts}]).id


def posted(bot, fake_slack, db, cid: int) -> dict:
    """Post pending candidates with /threadtune review and return the candidate with its post."""
    resp = bot.command("/threadtune", "review", user_id=REVIEWER, response_url=fake_slack.response_url("rv"))
    assert resp.status_code == 200
    return eventually(lambda: (c := get_candidate(db, TEAM_ID, cid))["review_ts"] and c)


def test_review_command_posts_candidate_with_buttons_permalink_scores_and_scrub_count(bot, fake_slack, db):
    cid = candidate(db, answer=A + " Mail it@example.com if stuck.")
    c = posted(bot, fake_slack, db, cid)
    post = fake_slack.posted[(c["review_channel"], c["review_ts"])]
    assert c["review_channel"] == "C0REVIEW"
    text = json.dumps(post["blocks"])
    assert "Approve" in text and "Edit" in text and "Reject" in text
    assert "https://fake.slack.com/archives/C0HELP/p1700000100000100" in text  # permalink to the source
    assert "PII scrubbed: 1" in text and "it@example.com" not in text
    reject = [b for b in post["blocks"] if b["type"] == "actions"][0]["elements"][-1]
    assert reject["action_id"] == rb.ACTION_REJECT and "confirm" in reject
    assert c["sources"][0]["permalink"].startswith("https://fake.slack.com/")


def test_reviewer_approves_with_a_button_and_the_post_is_redrawn(bot, fake_slack, db):
    c = posted(bot, fake_slack, db, candidate(db))
    bot.block_action(rb.ACTION_APPROVE, str(c["id"]), user_id=REVIEWER, channel=c["review_channel"],
                     message_ts=c["review_ts"])
    update = fake_slack.wait_for("chat.update")[0]
    assert update.params["ts"] == c["review_ts"]
    assert "Approved" in json.dumps(update.params["blocks"])
    assert get_candidate(db, TEAM_ID, c["id"])["status"] == "approved"
    rows = list(db.query("select actor, action, via from reviews where candidate_id = ?", [c["id"]]))
    assert rows == [{"actor": REVIEWER, "action": "approve", "via": "slack"}]
    note = eventually(lambda: [x for x in fake_slack.calls_for("chat.postMessage")
                               if x.params.get("thread_ts") == c["review_ts"]])
    assert "approve" in note[0].params["text"]


def test_non_reviewer_is_refused_with_an_ephemeral_and_nothing_changes(bot, fake_slack, db):
    c = posted(bot, fake_slack, db, candidate(db))
    bot.block_action(rb.ACTION_APPROVE, str(c["id"]), user_id=MEMBER, channel=c["review_channel"],
                     message_ts=c["review_ts"])
    eph = fake_slack.wait_for("chat.postEphemeral")[0]
    assert eph.params["user"] == MEMBER and "Only reviewers" in eph.params["text"]
    assert "U0REVIEWER" in eph.params["text"]
    assert get_candidate(db, TEAM_ID, c["id"])["status"] == "pending"
    assert fake_slack.count("chat.update") == 0
    n = eventually(lambda: fake_slack.count("response_url") >= 2 and fake_slack.count("response_url"))
    members = bot.command("/threadtune", "review", user_id=MEMBER, response_url=fake_slack.response_url("m"))
    assert members.status_code == 200
    assert "Only reviewers" in fake_slack.wait_for("response_url", n + 1)[-1].params["text"]


def test_edit_opens_prefilled_modal_and_submission_saves_the_edit(bot, fake_slack, db):
    c = posted(bot, fake_slack, db, candidate(db))
    bot.block_action(rb.ACTION_EDIT, str(c["id"]), user_id=REVIEWER, channel=c["review_channel"],
                     message_ts=c["review_ts"])
    view = fake_slack.wait_for("views.open")[0].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == rb.VIEW_EDIT
    inputs = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"]}
    assert inputs == {"question": Q, "answer": A}
    resp = bot.view_submission(rb.VIEW_EDIT, {
        "question": {"value": {"type": "plain_text_input", "value": "How can I reset the VPN password?"}},
        "answer": {"value": {"type": "plain_text_input", "value": A + " Then reconnect."}},
    }, user_id=REVIEWER, private_metadata=view["private_metadata"])
    assert resp.status_code == 200 and not resp.text.strip()
    after = get_candidate(db, TEAM_ID, c["id"])
    assert after["question"] == "How can I reset the VPN password?" and after["status"] == "pending"
    assert "Then reconnect." in json.dumps(fake_slack.wait_for("chat.update")[0].params["blocks"])


def test_edit_that_fails_the_checks_is_refused_in_the_modal(bot, fake_slack, db):
    c = posted(bot, fake_slack, db, candidate(db))
    resp = bot.view_submission(rb.VIEW_EDIT, {
        "question": {"value": {"type": "plain_text_input", "value": "Why?"}},
        "answer": {"value": {"type": "plain_text_input", "value": A}},
    }, user_id=REVIEWER, private_metadata=json.dumps({"candidate_id": c["id"]}))
    body = resp.json()
    assert body["response_action"] == "errors" and "too short" in body["errors"]["answer"]
    assert get_candidate(db, TEAM_ID, c["id"])["question"] == Q


def test_reject_asks_for_a_reason_in_a_modal_then_rejects(bot, fake_slack, db):
    c = posted(bot, fake_slack, db, candidate(db))
    bot.block_action(rb.ACTION_REJECT, str(c["id"]), user_id=REVIEWER, channel=c["review_channel"],
                     message_ts=c["review_ts"])
    view = fake_slack.wait_for("views.open")[0].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == rb.VIEW_REJECT
    empty = bot.view_submission(rb.VIEW_REJECT, {"reason": {"value": {"type": "plain_text_input", "value": ""}}},
                                user_id=REVIEWER, private_metadata=view["private_metadata"])
    assert empty.json()["response_action"] == "errors"
    ok = bot.view_submission(rb.VIEW_REJECT, {"reason": {"value": {"type": "plain_text_input",
                                                                    "value": "Outdated: we moved VPNs"}}},
                             user_id=REVIEWER, private_metadata=view["private_metadata"])
    assert ok.status_code == 200
    after = get_candidate(db, TEAM_ID, c["id"])
    assert after["status"] == "rejected" and after["reject_reason"] == "Outdated: we moved VPNs"
    assert "Rejected" in json.dumps(fake_slack.wait_for("chat.update")[0].params["blocks"])


def reaction(bot, user: str, name: str, channel: str, ts: str):
    return bot.event({"type": "reaction_added", "user": user, "reaction": name, "item_user": "UBOT",
                      "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": "1.0"})


def test_check_and_cross_reactions_on_review_posts_approve_and_reject(bot, fake_slack, db):
    first = posted(bot, fake_slack, db, candidate(db))
    second_id = candidate(db, "How do I get a parking badge for the garage?", "Ask reception for a badge.",
                          ts="1700000200.000100")
    second = posted(bot, fake_slack, db, second_id)
    assert reaction(bot, REVIEWER, "white_check_mark", first["review_channel"], first["review_ts"]).status_code == 200
    assert reaction(bot, REVIEWER, "x", second["review_channel"], second["review_ts"]).status_code == 200
    eventually(lambda: get_candidate(db, TEAM_ID, second_id)["status"] == "rejected")
    assert get_candidate(db, TEAM_ID, first["id"])["status"] == "approved"
    vias = [r[0] for r in db.execute("select via from reviews order by id")]
    assert vias == ["reaction", "reaction"]


def test_reactions_elsewhere_or_by_members_change_nothing(bot, fake_slack, db):
    c = posted(bot, fake_slack, db, candidate(db))
    reaction(bot, REVIEWER, "white_check_mark", "C0HELP", "1700000100.000100")  # not a review post
    reaction(bot, MEMBER, "white_check_mark", c["review_channel"], c["review_ts"])
    fake_slack.wait_for("chat.postEphemeral")
    stays(lambda: get_candidate(db, TEAM_ID, c["id"])["status"] == "pending", 0.3, what="a pending candidate")


def test_source_thread_mode_posts_into_the_support_thread(slack_settings, fake_slack, db):
    cid = candidate(db)
    fake_slack.seen.add(("C0HELP", "1700000100.000100"))  # the support thread exists in Slack
    ctx = BotContext(slack_settings.model_copy(update={"review_mode": "source_thread"}))
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url)
    assert post_candidates(ctx, client, TEAM_ID).posted == 1
    call = fake_slack.calls_for("chat.postMessage")[0]
    assert call.params["channel"] == "C0HELP" and call.params["thread_ts"] == "1700000100.000100"
    assert get_candidate(db, TEAM_ID, cid)["review_channel"] == "C0HELP"


def test_posting_is_paced_per_channel_and_stops_at_the_daily_cap(slack_settings, fake_slack, db):
    for i in range(4):
        candidate(db, f"How do I configure printer number {i}?", f"Use the printer {i} settings page.", ts=f"17000001{i}.000100")
    ctx = BotContext(slack_settings.model_copy(update={"review_daily_cap": 3}))
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url)
    result = post_candidates(ctx, client, TEAM_ID, limit=10, pacer=pacer(0.2))
    assert result.posted == 3 and result.capped and result.remaining == 1
    times = [c.at for c in fake_slack.calls_for("chat.postMessage")]
    assert all(b - a >= 0.18 for a, b in zip(times, times[1:]))
    assert post_candidates(ctx, client, TEAM_ID, pacer=pacer(0.2)).posted == 0


def test_blocks_escape_pair_text_and_respect_slack_limits():
    c = {"id": 7, "status": "pending", "question": "<!channel> ping?", "answer": "x" * 5000,
         "scores": {}, "sources": [], "approvals": [], "scrub_count": 0}
    blocks = rb.candidate_blocks(c)
    assert "<!channel>" not in json.dumps(blocks)
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    modal = rb.edit_modal(c)
    inputs = {b["block_id"]: b["element"] for b in modal["blocks"] if b["type"] == "input"}
    assert "initial_value" not in inputs["answer"]  # too long to edit whole: not prefilled cut
    assert rb.candidate_id_of(modal["private_metadata"]) == 7
    assert rb.candidate_id_of("garbage") is None


@pytest.mark.parametrize("status", ["approved", "rejected"])
def test_decided_posts_offer_only_the_actions_their_status_allows(status):
    c = {"id": 1, "status": status, "question": "q?", "answer": "a", "scores": {}, "sources": [],
         "approvals": ["U1"], "scrub_count": 0, "reject_reason": "no"}
    ids = [e["action_id"] for b in rb.candidate_blocks(c) if b["type"] == "actions" for e in b["elements"]]
    assert ids == ([rb.ACTION_EDIT, rb.ACTION_REJECT] if status == "approved" else [])


def test_stale_pairs_are_shown_to_reviewers_without_approve_buttons(bot, fake_slack, db, slack_settings):
    from bot.review import show_stale

    c = posted(bot, fake_slack, db, candidate(db))
    db["candidates"].update(c["id"], {"stale": 1, "stale_reason": "source message deleted in Slack"})
    client = WebClient(token="xoxb-test", base_url=fake_slack.api_url)
    assert show_stale(BotContext(slack_settings), client, TEAM_ID, [c["id"], 999]) == 1
    blocks = json.dumps(fake_slack.wait_for("chat.update")[0].params["blocks"])
    assert "Stale" in blocks and rb.ACTION_APPROVE not in blocks and rb.ACTION_REJECT in blocks
    note = [x for x in fake_slack.calls_for("chat.postMessage") if x.params.get("thread_ts") == c["review_ts"]]
    assert "source message deleted" in note[0].params["text"]


def test_a_modal_submission_is_acked_within_3_s_even_when_chat_update_is_rate_limited(bot, fake_slack, db):
    import time

    c = posted(bot, fake_slack, db, candidate(db))
    fake_slack.rate_limit("chat.update", retry_after=4)  # the redraw waits out a 429
    started = time.monotonic()
    resp = bot.view_submission(rb.VIEW_REJECT, {
        "reason": {"value": {"type": "plain_text_input", "value": "Outdated: the VPN was replaced."}},
    }, user_id=REVIEWER, private_metadata=json.dumps({"candidate_id": c["id"]}))
    assert resp.status_code == 200 and time.monotonic() - started < 3
    assert get_candidate(db, TEAM_ID, c["id"])["status"] == "rejected"
    redrawn = eventually(lambda: [u for u in fake_slack.calls_for("chat.update")[1:]], timeout=15)
    assert ":x: Rejected" in json.dumps(redrawn[0].params["blocks"])


def test_an_answer_too_long_for_the_edit_form_is_not_prefilled_cut_and_survives_a_save(bot, fake_slack, db):
    long_answer = ("Run `vpnctl reset --user you`, then wait for the token. " * 70).strip()  # ~3,900
    cid = candidate(db, answer=long_answer)
    assert get_candidate(db, TEAM_ID, cid)["status"] == "auto_rejected"  # too long: Edit is offered
    bot.block_action(rb.ACTION_EDIT, str(cid), user_id=REVIEWER, channel="C0REVIEW")
    view = fake_slack.wait_for("views.open")[0].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert not fake_slack.refusals("views.open")
    answer_input = next(b for b in view["blocks"] if b.get("block_id") == rb.BLOCK_ANSWER)
    assert "initial_value" not in answer_input["element"] and answer_input["optional"]
    assert "longer than a Slack form holds" in json.dumps(view["blocks"])
    resp = bot.view_submission(rb.VIEW_EDIT, {
        "question": {"value": {"type": "plain_text_input", "value": "How can I reset the VPN password?"}},
        "answer": {"value": {"type": "plain_text_input", "value": None}},
    }, user_id=REVIEWER, private_metadata=view["private_metadata"])
    assert "too long" in resp.json()["errors"]["answer"]  # kept whole, so still too long: say so
    assert get_candidate(db, TEAM_ID, cid)["answer"] == long_answer  # never saved cut
    short = "Run `vpnctl reset --user you`, then wait 15 minutes for the token."
    resp = bot.view_submission(rb.VIEW_EDIT, {
        "question": {"value": {"type": "plain_text_input", "value": "How can I reset the VPN password?"}},
        "answer": {"value": {"type": "plain_text_input", "value": short}},
    }, user_id=REVIEWER, private_metadata=view["private_metadata"])
    assert resp.status_code == 200 and get_candidate(db, TEAM_ID, cid)["answer"] == short
