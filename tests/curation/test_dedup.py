"""Near-duplicate questions become variants; near-misses with another meaning stay apart."""

from __future__ import annotations

import pytest

from curation.candidates import add_candidate
from curation.dedup import same_question

ANSWER = "Open the self-service page and follow the reset steps."


@pytest.mark.parametrize(("a", "b"), [
    ("How do I reset my VPN password?", "How can I reset my VPN password"),
    ("How do I reset my VPN password?", "how to reset the vpn passwords?"),
    ("How do I reset my VPN password?", "VPN password reset: how?"),
    ("How do I add a package?", "Can someone tell me how to add packages"),
    ("How do I resett my VPN pasword?", "How do I reset my VPN password?"),
])
def test_paraphrases_are_the_same_question(a, b):
    assert same_question(a, b)


@pytest.mark.parametrize(("a", "b"), [
    ("How do I reset my VPN password?", "How do I reset my VPN?"),
    ("How do I install Julia?", "How do I uninstall Julia?"),
    ("Is python2 supported?", "Is python3 supported?"),
    ("Why is my plot not showing?", "Why is my plot showing?"),
    ("How do I reset my VPN password?", "How do I reset my email password?"),
])
def test_near_misses_with_another_meaning_stay_apart(a, b):
    assert not same_question(a, b)


def test_paraphrase_in_store_becomes_variant_and_near_miss_does_not(db):
    first = add_candidate(db, "T1", "How do I reset my VPN password?", ANSWER, origin="manual")
    para = add_candidate(db, "T1", "how can I reset the VPN passwords", ANSWER + " Thanks.", origin="manual")
    miss = add_candidate(db, "T1", "How do I reset my VPN?", ANSWER, origin="manual")
    other_team = add_candidate(db, "T2", "How do I reset my VPN password?", ANSWER, origin="manual")
    assert first.status == "pending"
    assert para.status == "variant" and para.variant_of == first.id
    assert miss.status == "pending" and miss.variant_of is None
    assert other_team.status == "pending"  # one workspace never dedupes against another
