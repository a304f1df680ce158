"""Privacy: forget a user (CLI and slash), retention purge, stale pairs leave the next dataset."""

from __future__ import annotations

import datetime as dt

import pytest

from curation.candidates import add_candidate
from curation.privacy import forget_user, purge_older_than
from curation.review import approve
from tests.conftest import ADMIN, MEMBER

TEAM = "T0FAKE"


def seed_thread(db, user="U0ALICE", helper="U0BOB", ts="1700000000.000100"):
    reply_ts = "1700000100.000100"
    db["channels"].insert({"team_id": TEAM, "id": "C1", "name": "help", "is_private": 0}, ignore=True)
    db["users"].insert_all([{"team_id": TEAM, "id": user, "name": "alice", "real_name": "Alice A"},
                            {"team_id": TEAM, "id": helper, "name": "bob", "real_name": "Bob B"}])
    db["messages"].insert_all([
        {"team_id": TEAM, "channel_id": "C1", "ts": ts, "thread_ts": ts, "user_id": user,
         "text": "How do I reset the VPN? my mail is alice@acme.example", "source": "event"},
        {"team_id": TEAM, "channel_id": "C1", "ts": reply_ts, "thread_ts": ts, "user_id": helper,
         "text": "Use https://vpn.acme.internal/reset", "source": "event"},
    ])
    added = add_candidate(db, TEAM, "How do I reset the VPN?", "Use https://vpn.acme.internal/reset",
                          origin="deterministic", sources=[
                              {"kind": "message", "channel_id": "C1", "ts": ts},
                              {"kind": "message", "channel_id": "C1", "ts": reply_ts}])
    return added.id


def test_forget_removes_text_and_marks_derived_pairs_stale(db):
    cid = seed_thread(db)
    approve(db, TEAM, cid, ADMIN)
    result = forget_user(db, TEAM, "U0ALICE", actor=ADMIN)
    assert result.messages == 1 and result.stale_candidates == [cid]
    row = db.execute("select text, deleted from messages where user_id = 'U0ALICE'").fetchone()
    assert row == (None, 1)
    assert list(db["messages"].search("alice")) == []
    cand = db["candidates"].get(cid)
    assert cand["stale"] == 1 and "U0ALICE" in cand["stale_reason"]
    assert db.execute("select count(*) from audit where action = 'forget'").fetchone()[0] == 1
    assert db.execute("select count(*) from reviews where action = 'stale'").fetchone()[0] >= 1
    # the other user's message stays
    assert db.execute("select text from messages where user_id = 'U0BOB'").fetchone()[0]


def test_stale_pairs_leave_the_next_dataset_version(db):
    from curation import datasets

    cid = seed_thread(db)
    other = add_candidate(db, TEAM, "What is the expense limit without approval?",
                          "250 EUR without approval.", origin="manual").id
    approve(db, TEAM, cid, ADMIN)
    approve(db, TEAM, other, ADMIN)
    forget_user(db, TEAM, "U0ALICE", actor=ADMIN)
    ds = datasets.create_dataset(db, TEAM, created_by=ADMIN)
    ids = {r[0] for r in db.execute("select candidate_id from dataset_items where dataset_id = ?",
                                    [ds["id"]]).fetchall()}
    assert cid not in ids and other in ids


def test_forget_is_scoped_to_one_team(db):
    seed_thread(db)
    db["messages"].insert({"team_id": "T0OTHER", "channel_id": "C1", "ts": "1.0", "user_id": "U0ALICE",
                           "text": "other workspace", "source": "event"})
    forget_user(db, TEAM, "U0ALICE", actor=ADMIN)
    assert db.execute("select text from messages where team_id = 'T0OTHER'").fetchone()[0] == "other workspace"


def test_retention_purges_old_raw_messages_only(db):
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()
    new = dt.datetime.now(dt.UTC).timestamp()
    db["messages"].insert_all([
        {"team_id": TEAM, "channel_id": "C1", "ts": f"{old:.6f}", "text": "old", "source": "import"},
        {"team_id": TEAM, "channel_id": "C1", "ts": f"{new:.6f}", "text": "new", "source": "event"},
    ])
    result = purge_older_than(db, TEAM, 30)
    assert result.messages == 1
    assert [r[0] for r in db.execute("select text from messages where deleted = 0")] == ["new"]
    with pytest.raises(ValueError):
        purge_older_than(db, TEAM, 0)


def test_slash_forget_by_non_admin_is_refused_with_who_can(bot, fake_slack, db):
    seed_thread(db)
    bot.command("/threadtune", "forget <@U0ALICE|alice>", user_id=MEMBER,
                response_url=fake_slack.response_url("f1"))
    text = fake_slack.wait_for("response_url")[0].params["text"]
    assert "Only admins" in text and ADMIN in text
    assert db.execute("select count(*) from messages where deleted = 1").fetchone()[0] == 0


def test_slash_forget_by_admin_removes_and_tells_reviewers(bot, fake_slack, db):
    seed_thread(db)
    bot.command("/threadtune", "forget <@U0ALICE|alice>", user_id=ADMIN,
                response_url=fake_slack.response_url("f2"))
    assert "1 messages removed" in fake_slack.wait_for("response_url")[0].params["text"]
    notice = fake_slack.wait_for("chat.postMessage")[0].params
    assert notice["channel"] == "C0REVIEW" and "forgotten" in notice["text"]
    assert db.execute("select count(*) from messages where deleted = 1").fetchone()[0] == 1


def test_deleting_a_source_message_tells_reviewers_on_the_review_post(bot, fake_slack, db):
    from curation.channels import set_watched

    set_watched(db, TEAM, "C1", True, by=ADMIN)
    cid = seed_thread(db)
    db["candidates"].update(cid, {"review_channel": "C0REVIEW", "review_ts": "1700000500.000100"})
    fake_slack.posted[("C0REVIEW", "1700000500.000100")] = {"text": "review post", "blocks": []}
    resp = bot.event({"type": "message", "subtype": "message_deleted", "channel": "C1", "hidden": True,
                      "deleted_ts": "1700000100.000100", "ts": "1700000900.000100", "channel_type": "channel"})
    assert resp.status_code == 200
    assert db["candidates"].get(cid)["stale"] == 1
    fake_slack.wait_for("chat.update")
    note = [c for c in fake_slack.wait_for("chat.postMessage")
            if c.params.get("thread_ts") == "1700000500.000100"]
    assert note and "stale" in (note[0].params.get("text") or "").lower()


def test_forget_drops_the_pairs_the_person_submitted_approved_ones_too(db):
    own = add_candidate(db, TEAM, "What is the expense limit without approval?",
                        "250 EUR without approval.", origin="manual", created_by="U0ALICE").id
    approve(db, TEAM, own, ADMIN)
    forget_user(db, TEAM, "U0ALICE", actor=ADMIN)
    row = db["candidates"].get(own)
    assert (row["question"], row["answer"], row["status"], row["stale"]) == ("", "", "rejected", 1)
    assert db.execute("select count(*) from reviews where candidate_id = ? and (before like '%250%' "
                      "or after like '%250%')", [own]).fetchone()[0] == 0


def test_a_deleted_source_redacts_the_derived_pair_its_review_snapshots_and_key(db):
    from curation.deletion import apply_delete

    cid = seed_thread(db)
    approve(db, TEAM, cid, ADMIN)
    apply_delete(db, TEAM, "C1", "1700000100.000100")
    row = db["candidates"].get(cid)
    assert (row["question"], row["answer"], row["evidence"], row["question_key"]) == ("", "", None, None)
    assert row["stale"] == 1
    assert db.execute("select count(*) from reviews where candidate_id = ? and (before is not null "
                      "or after is not null)", [cid]).fetchone()[0] == 0


def test_a_version_holding_erased_text_is_superseded_and_no_longer_exported(db, tmp_path):
    from curation import datasets
    from curation.errors import CurationError

    cid = seed_thread(db)
    approve(db, TEAM, cid, ADMIN)
    ds = datasets.create_dataset(db, TEAM, created_by=ADMIN)
    out = tmp_path / "v1.jsonl"
    datasets.write_jsonl(datasets.export_rows(db, TEAM, "v1"), out)
    datasets.record_export(db, TEAM, ds["id"], out)
    forget_user(db, TEAM, "U0ALICE", actor=ADMIN)
    assert not out.exists()
    assert db.execute("select count(*) from dataset_items where question like '%VPN%'").fetchone()[0] == 0
    with pytest.raises(CurationError, match="superseded"):
        datasets.export_rows(db, TEAM, "v1")
    detail = db.execute("select detail from audit where action = 'dataset.supersede'").fetchone()[0]
    assert str(out) in detail and "forgotten" in detail


def test_the_store_sets_secure_delete_itself(tmp_path, monkeypatch):
    """Not left to the SQLite build's compile-time default (which happens to be on here)."""
    import sqlite3

    from curation import store

    statements: list[str] = []
    real_connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(store.sqlite3, "connect", traced)
    db = store.connect(tmp_path / "s.db")
    assert "PRAGMA secure_delete=ON" in statements
    assert db.execute("pragma secure_delete").fetchone()[0] == 1
