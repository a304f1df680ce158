"""Every Block Kit payload the bot builds passes slack_sdk's validation and Slack's limits (the
strict fake's rules), for any text a user or a model may write, from empty to 100 KB, with emoji,
CJK and right-to-left scripts; and no such text can become a mention, a ping or a link."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings, strategies as st

from bot import answer_blocks as ab
from bot import blocks as bk
from bot import review_blocks as rb
from bot.ask import asked_text
from bot.faq import faq_modal, loading_modal
from tests.fakes.slack_rules import block_problems, message_error, view_problems

ALPHABETS = [
    st.characters(blacklist_categories=("Cs",)),                    # anything
    st.sampled_from(list("😀👍🏽👨‍👩‍👧🇫🇷🔥✅❌")),                   # emoji, with joiners and flags
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),      # CJK
    st.characters(min_codepoint=0x0590, max_codepoint=0x06FF),      # Hebrew and Arabic (RTL)
    st.sampled_from(list("<>&|*_~`@!#^\n ") + ["<!channel>", "<!here>", "<@U0BOSS>", "<!subteam^S1>",
                                              "<https://evil.example|bank>", "&amp;", "&lt;"]),
]
SIZES = st.sampled_from([0, 1, 5, 200, 2999, 3000, 3001, 12_000, 40_000, 100_000])


@st.composite
def texts(draw) -> str:  # noqa: ANN001
    """Text of a drawn size from a drawn mix of alphabets (big texts repeat a drawn sample)."""
    size = draw(SIZES)
    alphabet = st.one_of(*draw(st.lists(st.sampled_from(ALPHABETS), min_size=1, max_size=3)))
    sample = "".join(draw(st.lists(alphabet, min_size=min(size, 1), max_size=min(size, 300))))
    if size > 300 and sample:
        sample = (sample * (size // len(sample) + 1))[:size]
    return sample


DANGEROUS = re.compile(r"<[!@#]|<https?:")


def assert_message_ok(blocks: list[dict], text: str | None = None) -> None:
    assert block_problems(blocks) == [], block_problems(blocks)[:3]
    assert message_error({"text": text or "x"}, blocks) is None
    json.dumps(blocks)


def assert_no_mentions_from(user_text: str, payload: object) -> None:
    """Nothing the user wrote turned into a mention, ping or link in ``payload``."""
    dumped = json.dumps(payload, ensure_ascii=False)
    if DANGEROUS.search(user_text):
        assert "<!channel>" not in dumped and "<!here>" not in dumped and "<!subteam" not in dumped
        assert "<@U0BOSS>" not in dumped and "<https://evil.example|" not in dumped


@settings(max_examples=60, deadline=None)
@given(texts(), texts(), st.booleans(), st.booleans())
def test_answer_messages_are_valid_for_any_answer(answer, question, verified, streaming):
    sources = [{"permalink": "https://fake.slack.com/archives/C1/p1", "question": question}]
    blocks = ab.answer_blocks(7, answer, model_version="v3", sources=sources, verified=verified,
                              streaming=streaming)
    assert_message_ok(blocks, ab.fallback_text(answer))
    assert_no_mentions_from(answer + question, blocks)
    assert_no_mentions_from(answer, ab.fallback_text(answer))
    if not streaming:
        assert blocks[-1]["type"] == "actions"


@settings(max_examples=40, deadline=None)
@given(texts(), texts())
def test_placeholder_error_and_faq_offer_are_valid(question, answer):
    assert_message_ok(ab.placeholder_blocks(question))
    retry = {"c": "C1", "t": "1.0", "u": "U1", "q": question, "team": "T1"}
    if ab.retry_value(retry) is None:
        retry = {"c": "C1", "t": "1.0", "u": "U1", "team": "T1", "a": 12}
    assert_message_ok(ab.error_blocks("The model server is not answering.", retry))
    offer = ab.save_faq_blocks(3, question, answer)
    assert_message_ok(offer)
    assert_no_mentions_from(question + answer, offer)
    echo = asked_text("U0ASKER", question)
    assert len(echo) <= 3000 and message_error({"text": echo}, None) is None
    assert_no_mentions_from(question, echo.replace("<@U0ASKER>", ""))


@settings(max_examples=40, deadline=None)
@given(texts(), texts(), texts())
def test_modals_are_valid_and_never_prefill_cut_text(question, answer, reason):
    c = {"id": 4, "question": question, "answer": answer, "status": "pending", "scores": {},
         "scrub_count": 0, "approvals": [], "sources": [], "origin": "thread", "reject_reason": reason,
         "stale": 0, "stale_reason": None, "variant_of": None}
    for view in (rb.edit_modal(c), rb.reject_modal(c), faq_modal(question, answer, channel="C1"),
                 loading_modal(), ab.correction_modal(4, question, answer, "C1")):
        assert view_problems(view) == [], view_problems(view)[:3]
        for block in view["blocks"]:
            initial = (block.get("element") or {}).get("initial_value")
            assert initial is None or initial in (question, answer)


@settings(max_examples=40, deadline=None)
@given(texts(), texts(), texts(), st.sampled_from(["pending", "approved", "rejected", "auto_rejected", "variant"]))
def test_review_posts_are_valid_and_escape_pair_text(question, answer, reason, status):
    c = {"id": 4, "question": question, "answer": answer, "status": status, "scores": {
        "grounding": {"score": 0.5, "passed": True, "reason": reason}}, "scrub_count": 1,
         "approvals": ["U0REVIEWER"], "origin": "thread", "reject_reason": reason, "stale": 0,
         "stale_reason": None, "variant_of": None,
         "sources": [{"permalink": "https://fake.slack.com/archives/C1/p1", "channel_id": "C1", "ts": "1.0"}]}
    blocks = rb.candidate_blocks(c, quorum=2)
    assert_message_ok(blocks, rb.candidate_text(c))
    assert_no_mentions_from(question + answer + reason, [blocks, rb.candidate_text(c)])
    note = rb.decision_text("reject", "U0REVIEWER", reason)
    assert len(note) <= 3000
    assert_no_mentions_from(reason, note.replace("<@U0REVIEWER>", ""))


@settings(deadline=None)
@given(texts(), st.integers(min_value=8, max_value=3000))
def test_split_keeps_every_character_within_the_limit_and_never_cuts_an_escape(text, limit):
    escaped = bk.escape(text)
    pieces = bk.split(escaped, limit)
    assert all(0 < len(p) <= limit and p.strip() for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(escaped.split())
    for p in pieces:
        assert not re.search(r"&(a|am|amp|l|lt|g|gt)?$", p) or p.endswith(("&amp;", "&lt;", "&gt;"))


@settings(deadline=None)
@given(texts(), st.integers(min_value=1, max_value=3000))
def test_cut_fits_and_marks_what_it_cut(text, limit):
    out = bk.cut(bk.escape(text), limit)
    assert len(out) <= limit
    assert out == bk.escape(text) or out.endswith(bk.ELLIPSIS)
