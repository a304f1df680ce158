"""Property-based tests: the parsers and the Block Kit builders hold up on any input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import review_blocks as rb
from curation.datasets import pair_from_row
from curation.dedup import content_stems, same_question
from curation.errors import CurationError
from curation.extract import parse_pairs
from curation.transcript import render_text

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


@settings(max_examples=150, deadline=None)
@given(text)
def test_parse_pairs_returns_pairs_or_raises_a_curation_error(reply):
    try:
        pairs = parse_pairs(reply)
    except CurationError:
        return
    assert all(p.question and p.answer for p in pairs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({"question": text, "answer": text, "evidence": text}), max_size=4),
       text, text)
def test_parse_pairs_finds_json_inside_any_prose(items, before, after):
    reply = before.replace("{", "").replace("[", "") + json.dumps({"pairs": items}) + " " + after
    valid = [i for i in items if i["question"].strip() and i["answer"].strip()]
    if items and not valid:  # a list of only broken pairs is bad output, not "no pairs"
        with pytest.raises(CurationError):
            parse_pairs(reply)
        return
    assert len(parse_pairs(reply)) == len(valid)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | text,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                    max_leaves=10))
def test_import_row_parser_accepts_or_explains(row):
    try:
        q, a = pair_from_row(row)
    except ValueError as err:
        assert str(err)
        return
    assert q.strip() and a.strip()


@settings(max_examples=150, deadline=None)
@given(text, text)
def test_dedup_is_symmetric_and_reflexive(a, b):
    assert same_question(a, b) == same_question(b, a)
    if content_stems(a):
        assert same_question(a, a)


@settings(max_examples=100, deadline=None)
@given(text)
def test_render_text_never_fails(raw):
    assert isinstance(render_text(raw, {"U1": "bob"}, {}), str)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=10**9), text, text,
       st.sampled_from(["pending", "approved", "rejected", "auto_rejected", "variant"]),
       st.integers(min_value=0, max_value=50), st.booleans())
def test_review_blocks_stay_within_slack_limits(cid, question, answer, status, scrubs, stale):
    c = {"id": cid, "status": status, "question": question or "?", "answer": answer, "scores":
         {"grounding": {"score": 0.5, "passed": False, "reason": answer[:50]}}, "approvals": ["U1"],
         "sources": [{"kind": "message", "channel_id": "C1", "ts": "1.2", "permalink": None}],
         "scrub_count": scrubs, "stale": stale, "reject_reason": answer[:100], "origin": "thread"}
    blocks = rb.candidate_blocks(c, quorum=2)
    assert len(blocks) <= 50
    for b in blocks:
        if b["type"] == "section":
            assert 0 < len(b["text"]["text"]) <= 3000
        if b["type"] == "context":
            assert all(len(e["text"]) <= 2000 for e in b["elements"])
        if b["type"] == "actions":
            assert all(len(e["value"]) <= 2000 for e in b["elements"])
    json.dumps(blocks)
    for modal in (rb.edit_modal(c), rb.reject_modal(c)):
        assert len(modal["title"]["text"]) <= 24 and len(modal["private_metadata"]) <= 3000
        assert rb.candidate_id_of(modal["private_metadata"]) == cid
