"""Property-based tests (hypothesis) for the parsers and the Block Kit builders: any input gives a
result within Slack's limits or a clear domain error, never a crash."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from bot.answer_blocks import answer_blocks, error_blocks
from bot.blocks import split as split_text
from bot.review_blocks import candidate_blocks, edit_modal, reject_modal
from curation.errors import CurationError
from curation.extract import parse_pairs
from curation.pii import scrub

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=9000)
pair = st.fixed_dictionaries({"question": texts, "answer": texts})


def walk_texts(blocks):
    for block in blocks:
        for key in ("text",):
            if isinstance(block.get(key), dict):
                yield block["type"], block[key].get("text", "")
        for el in block.get("elements", []) or []:
            if isinstance(el, dict) and isinstance(el.get("text"), (dict, str)):
                yield "element", el["text"]["text"] if isinstance(el["text"], dict) else el["text"]


def check_blocks(blocks):
    assert isinstance(blocks, list) and 0 < len(blocks) <= MAX_BLOCKS
    json.dumps(blocks)
    for kind, text in walk_texts(blocks):
        assert len(text) <= SECTION_LIMIT, (kind, len(text))


@given(texts, st.integers(min_value=50, max_value=3000))
def test_split_text_keeps_every_character_within_the_limit(text, limit):
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    # whitespace at the cuts may go; every other character stays, in order
    assert "".join("".join(parts).split()) == "".join(text.split())


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200_000).map(lambda t: t * 1), st.booleans(),
       st.lists(st.fixed_dictionaries({"permalink": st.text(max_size=300), "question": texts}), max_size=5),
       st.sampled_from([None, "closest"]))
def test_answer_blocks_stay_within_block_kit_limits(text, verified, sources, mode):
    check_blocks(answer_blocks(7, text or "x", model_version="v3", sources=sources, verified=verified, mode=mode))


@given(texts)
def test_error_blocks_stay_within_limits(message):
    check_blocks(error_blocks(message or "error", {"question": "q"}))


candidates = st.fixed_dictionaries({
    "id": st.integers(min_value=1, max_value=10**9), "question": texts, "answer": texts,
    "status": st.sampled_from(["pending", "approved", "rejected", "auto_rejected", "variant"]),
    "scores": st.dictionaries(st.sampled_from(["grounding", "length", "degeneration", "pii"]),
                              st.fixed_dictionaries({"score": st.floats(0, 1), "passed": st.booleans(),
                                                     "reason": texts}), max_size=4),
    "scrub_count": st.integers(0, 50), "approvals": st.just([]), "sources": st.just([]),
    "origin": st.sampled_from(["thread", "manual", "feedback", "document"]),
    "reject_reason": st.none() | texts, "stale": st.sampled_from([0, 1]), "stale_reason": st.none() | texts,
    "variant_of": st.none() | st.integers(1, 100),
})


@settings(max_examples=60, deadline=None)
@given(candidates)
def test_review_post_and_modals_stay_within_limits(cand):
    check_blocks(candidate_blocks(cand))
    for view in (edit_modal(cand), reject_modal(cand)):
        json.dumps(view)
        assert len(view["blocks"]) <= MAX_BLOCKS
        for block in view["blocks"]:
            initial = (block.get("element") or {}).get("initial_value")
            assert initial is None or len(initial) <= 3000


@settings(max_examples=200, deadline=None)
@given(st.one_of(texts, st.builds(lambda items, pre, post: pre + json.dumps(items) + post,
                                  st.lists(pair, max_size=4), texts, texts)))
def test_parse_pairs_returns_valid_pairs_or_a_domain_error(reply):
    try:
        pairs = parse_pairs(reply)
    except CurationError:
        return
    for p in pairs:
        assert p.question.strip() and p.answer.strip()


@given(texts)
def test_scrub_is_idempotent_and_counts(text):
    once = scrub(text)
    twice = scrub(once.text)
    assert twice.count == 0 and twice.text == once.text
