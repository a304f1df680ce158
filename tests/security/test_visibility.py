"""Visibility (#16): a pair answers only where its knowledge may be seen, goes into a dataset only
from channels an admin marked trainable, and channels are stored with their real privacy."""

from __future__ import annotations

import json

import pytest

from curation import datasets
from curation.channels import set_visibility
from curation.retrieval import top_pairs
from curation.visibility import describe
from tests.conftest import ADMIN, MEMBER
from tests.fakes.wait import eventually
from tests.serving.conftest import WATCHED, approve_pair, watch
from tests.serving.conftest import (answer_bot, answer_bot_factory, answer_settings,  # noqa: F401
                                    fake_llm)  # fixtures of the answer flow
from tests.serving.test_answers_flow import _text, final_update, mention

T = "T0FAKE"
PRIVATE = "C0PRIV"
Q = "How do I rotate the payroll database password?"
A = "Run the rotate-payroll job in the ops console; it updates the vault too."


def private_pair(db, channel: str = PRIVATE, *, is_im: int = 0) -> int:
    db["channels"].insert({"team_id": T, "id": channel, "name": "finance-ops", "watched": 1,
                           "is_private": 1, "is_im": is_im}, replace=True)
    cid = approve_pair(db, Q, A)
    db.execute("update candidate_sources set channel_id = ?, permalink = ? where candidate_id = ?",
               [channel, f"https://fake.slack.com/archives/{channel}/p1700000000000100", cid])
    return cid


def test_a_private_channel_pair_answers_only_in_that_channel(db):
    cid = private_pair(db)
    assert [p["id"] for p in top_pairs(db, T, Q, visible_in=PRIVATE)] == [cid]
    assert top_pairs(db, T, Q, visible_in=WATCHED) == []
    assert top_pairs(db, T, Q) == []  # no channel: only pairs that may answer anywhere
    assert describe(db, T, cid) == {"scope": "private", "channels": [PRIVATE]}
    set_visibility(db, T, PRIVATE, shared=True)  # an admin shares the channel
    assert [p["id"] for p in top_pairs(db, T, Q, visible_in=WATCHED)] == [cid]
    assert describe(db, T, cid)["scope"] == "shared"


def test_a_dm_pair_answers_only_in_that_dm_and_an_unknown_channel_counts_as_private(db):
    cid = private_pair(db, "D0ALICE", is_im=1)
    assert top_pairs(db, T, Q, visible_in=WATCHED) == []
    assert describe(db, T, cid) == {"scope": "dm", "channels": ["D0ALICE"]}
    db.execute("delete from channels where id = 'D0ALICE'")
    assert top_pairs(db, T, Q, visible_in=WATCHED) == []
    assert [p["id"] for p in top_pairs(db, T, Q, visible_in="D0ALICE")] == [cid]


def test_public_documents_and_manual_pairs_answer_anywhere(db):
    watch(db)
    public = approve_pair(db, "Where is the expense policy?", "On the finance wiki page.")
    manual = db["candidates"].insert({"team_id": T, "question": "Who approves travel budgets?",
                                      "answer": "Your cost-centre owner.", "status": "approved",
                                      "origin": "manual", "dedup_key": "m1"}).last_pk
    assert [p["id"] for p in top_pairs(db, T, "expense policy", visible_in=PRIVATE)] == [public]
    assert [p["id"] for p in top_pairs(db, T, "approves travel budgets")] == [manual]


def test_an_ask_in_a_public_channel_gets_no_private_pair_badge_or_link(answer_bot, fake_slack, fake_llm, db):
    private_pair(db)
    fake_llm.script = ["I do not know; ask the ops team."]
    mention(answer_bot, Q, "1700000100.000100", channel=WATCHED)
    body = _text(final_update(fake_slack))
    assert "Verified answer" not in body and PRIVATE not in body and "rotate-payroll" not in body
    assert db.execute("select verified, sources from answers").fetchone() == (0, "[]")


def test_the_same_ask_in_the_private_channel_is_answered_from_its_pair(answer_bot, fake_slack, fake_llm, db):
    fake_slack.add_channel(PRIVATE, "finance-ops", is_private=True, is_channel=False, is_group=True)
    private_pair(db)
    mention(answer_bot, Q, "1700000100.000100", channel=PRIVATE)
    body = _text(final_update(fake_slack))
    assert "Verified answer" in body and "rotate-payroll" in body


def test_private_channel_pairs_enter_datasets_only_from_trainable_channels(db):
    watch(db)
    public = approve_pair(db, "Where is the expense policy?", "On the finance wiki page.")
    private = private_pair(db)
    ds = datasets.create_dataset(db, T, created_by=ADMIN)
    items = {r[0] for r in db.execute("select candidate_id from dataset_items where dataset_id = ?", [ds["id"]])}
    assert items == {public}
    set_visibility(db, T, PRIVATE, trainable=True)
    ds = datasets.create_dataset(db, T, created_by=ADMIN)
    items = {r[0] for r in db.execute("select candidate_id from dataset_items where dataset_id = ?", [ds["id"]])}
    assert items == {public, private}


def test_watch_stores_the_real_privacy_and_events_keep_it_current(bot, fake_slack, db):
    fake_slack.add_channel(PRIVATE, "finance-ops", is_private=True, is_channel=False, is_group=True)
    bot.command("/threadtune", f"watch <#{PRIVATE}>", user_id=ADMIN, channel_id=PRIVATE,
                response_url=fake_slack.response_url("w"))
    fake_slack.wait_for("response_url")
    assert db.execute("select is_private from channels where id = ?", [PRIVATE]).fetchone() == (1,)
    # converted to public: its next message says channel_type "channel"
    bot.message(PRIVATE, "U1", "now public", "1700000001.000100")
    assert db.execute("select is_private from channels where id = ?", [PRIVATE]).fetchone() == (0,)
    # and back to private, with a new name
    bot.event({"type": "group_rename", "channel": {"id": PRIVATE, "name": "finance-secret",
                                                   "created": 1700000000}})
    assert eventually(lambda: db.execute("select name, is_private from channels where id = ?",
                                         [PRIVATE]).fetchone() == ("finance-secret", 1))
    bot.message(PRIVATE, "U1", "private again", "1700000002.000100", extra={"channel_type": "group"})
    assert db.execute("select is_private from channels where id = ?", [PRIVATE]).fetchone() == (1,)


@pytest.mark.parametrize("user, allowed", [(ADMIN, True), (MEMBER, False)])
def test_only_admins_share_a_private_channel(bot, fake_slack, db, user, allowed):
    db["channels"].insert({"team_id": T, "id": PRIVATE, "name": "finance-ops", "is_private": 1})
    bot.command("/threadtune", f"visibility <#{PRIVATE}> shared trainable", user_id=user,
                channel_id=PRIVATE, response_url=fake_slack.response_url("v"))
    text = fake_slack.wait_for("response_url")[0].params["text"]
    row = db.execute("select shared, trainable from channels where id = ?", [PRIVATE]).fetchone()
    if allowed:
        assert row == (1, 1) and "answer anywhere" in text
        assert db.execute("select count(*) from audit where action = 'visibility'").fetchone()[0] == 1
    else:
        assert row == (0, 0) and "Only admins" in text


def test_review_show_says_where_a_pair_may_be_seen(db, settings):
    from typer.testing import CliRunner

    from threadtune.cli import app
    from threadtune.shell import set_settings

    cid = private_pair(db)
    set_settings(settings)
    try:
        out = CliRunner().invoke(app, ["review", "show", str(cid), "--json"])
    finally:
        set_settings(None)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["visibility"] == {"scope": "private", "channels": [PRIVATE]}
