"""add_candidate scrubs, checks, dedupes and is idempotent; the review state machine audits all."""

from __future__ import annotations

import json

import pytest

from curation import review
from curation.candidates import add_candidate, get_candidate, list_candidates
from curation.errors import CurationError, NotFound

Q, A = "How do I reset my VPN password?", "Run `vpnctl reset --user you` and wait 15 minutes."


def test_pair_is_scrubbed_before_it_is_stored_and_the_count_kept(db):
    added = add_candidate(db, "T1", Q + " (ask jane@example.com)", A + " Token: xoxb-1234567890-abcdefghij",
                          origin="manual", created_by="U1")
    c = get_candidate(db, "T1", added.id)
    assert "jane@example.com" not in c["question"] and "[EMAIL]" in c["question"]
    assert "xoxb-" not in c["answer"]
    assert c["scrub_count"] == 2 == added.scrub_count
    assert c["scores"]["pii"]["count"] == 2


def test_same_pair_from_same_sources_is_stored_once(db):
    src = [{"kind": "message", "channel_id": "C1", "ts": "1.0"}]
    a = add_candidate(db, "T1", Q, A, origin="thread", sources=src)
    b = add_candidate(db, "T1", Q, A, origin="thread", sources=src)
    assert a.created and not b.created and a.id == b.id
    assert len(list_candidates(db, "T1")) == 1
    assert get_candidate(db, "T1", a.id)["sources"][0]["ts"] == "1.0"


def test_failing_pair_is_auto_rejected_with_reason_and_review_row(db):
    added = add_candidate(db, "T1", Q, "Use 300 seconds.", origin="thread",
                          source_text="Bob: use 30 seconds")
    assert added.status == "auto_rejected"
    assert "grounding" in added.reason and "300" in added.reason
    rows = list(db.query("select action, actor, via from reviews where candidate_id = ?", [added.id]))
    assert rows == [{"action": "auto_reject", "actor": "threadtune", "via": "system"}]


def test_unknown_origin_is_refused(db):
    with pytest.raises(ValueError, match="origin"):
        add_candidate(db, "T1", Q, A, origin="bogus")


def test_quorum_needs_n_distinct_approvals(db):
    cid = add_candidate(db, "T1", Q, A, origin="manual").id
    d1 = review.approve(db, "T1", cid, "U1", quorum=2)
    assert d1.candidate["status"] == "pending" and "1/2" in d1.message
    again = review.approve(db, "T1", cid, "U1", quorum=2)
    assert not again.changed
    d2 = review.approve(db, "T1", cid, "U2", quorum=2)
    assert d2.candidate["status"] == "approved"
    assert d2.candidate["approvals"] == ["U1", "U2"]


def test_every_action_writes_review_and_audit_rows_with_before_and_after(db):
    cid = add_candidate(db, "T1", Q, A, origin="manual").id
    review.edit(db, "T1", cid, "U1", answer=A + " Then reconnect.")
    review.approve(db, "T1", cid, "U2")
    review.reject(db, "T1", cid, "U3", "outdated since the new VPN")
    rows = review.history(db, "T1", cid)
    assert [r["action"] for r in rows] == ["edit", "approve", "reject"]
    edit = rows[0]
    assert json.loads(edit["before"])["answer"] == A
    assert json.loads(edit["after"])["answer"].endswith("Then reconnect.")
    assert rows[2]["reason"] == "outdated since the new VPN"
    actions = [r["action"] for r in db.query("select action from audit where target = ?", [f"candidate:{cid}"])]
    assert actions == ["review.edit", "review.approve", "review.reject"]


def test_edit_resets_approvals_and_reopens_an_approved_pair(db):
    cid = add_candidate(db, "T1", Q, A, origin="manual").id
    review.approve(db, "T1", cid, "U1")
    d = review.edit(db, "T1", cid, "U2", question="How can I reset the VPN password quickly?")
    assert d.candidate["status"] == "pending" and d.candidate["approvals"] == []


def test_edit_is_scrubbed_and_checked(db):
    cid = add_candidate(db, "T1", Q, A, origin="manual").id
    d = review.edit(db, "T1", cid, "U1", answer=A + " Or mail it@example.com.")
    assert "[EMAIL]" in d.candidate["answer"]
    with pytest.raises(CurationError, match="not saved"):
        review.edit(db, "T1", cid, "U1", answer="no")
    assert get_candidate(db, "T1", cid)["answer"] == d.candidate["answer"]


def test_reject_needs_a_reason_and_rejected_cannot_be_approved(db):
    cid = add_candidate(db, "T1", Q, A, origin="manual").id
    with pytest.raises(CurationError, match="reason"):
        review.reject(db, "T1", cid, "U1", "  ")
    review.reject(db, "T1", cid, "U1", "wrong")
    with pytest.raises(CurationError, match="rejected"):
        review.approve(db, "T1", cid, "U1")


def test_unknown_candidate_and_other_team_are_not_found(db):
    cid = add_candidate(db, "T1", Q, A, origin="manual").id
    with pytest.raises(NotFound):
        review.approve(db, "T1", 999, "U1")
    with pytest.raises(NotFound):
        review.approve(db, "T2", cid, "U1")


def test_stale_pair_cannot_be_approved(db):
    cid = add_candidate(db, "T1", Q, A, origin="manual").id
    db["candidates"].update(cid, {"stale": 1, "stale_reason": "source message deleted in Slack"})
    with pytest.raises(CurationError, match="stale"):
        review.approve(db, "T1", cid, "U1")
