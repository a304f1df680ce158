"""top_pairs: approved, non-stale pairs of one team, best match first."""

from __future__ import annotations

from curation import review
from curation.candidates import add_candidate
from curation.retrieval import top_pairs


def approved(db, team, q, a):
    cid = add_candidate(db, team, q, a, origin="manual").id
    review.approve(db, team, cid, "U1")
    return cid


def test_top_pairs_finds_approved_pairs_of_the_team_only(db):
    vpn = approved(db, "T1", "How do I reset my VPN password?", "Use the VPN self-service page.")
    approved(db, "T1", "Where is the parking garage?", "Behind building B, level -1.")
    add_candidate(db, "T1", "How do I reset the VPN token?", "Pending answer about the VPN.", origin="manual")
    approved(db, "T2", "How do I reset my VPN password at T2?", "Other team's VPN answer.")
    got = top_pairs(db, "T1", "vpn password reset", k=3)
    assert [g["id"] for g in got] == [vpn]
    assert top_pairs(db, "T1", "!!! ??? \"", k=3) == []


def test_stale_pairs_are_never_retrieved(db):
    cid = approved(db, "T1", "How do I reset my VPN password?", "Use the VPN self-service page.")
    db["candidates"].update(cid, {"stale": 1})
    assert top_pairs(db, "T1", "VPN password") == []
