"""Block Kit builders for answers: Slack's limits hold for any text."""

from __future__ import annotations

import json

from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from bot import answer_blocks as ab
from bot import blocks as bk
from tests.fakes.slack_rules import message_error


def sections(blocks: list[dict]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def test_split_text_keeps_pieces_within_3000_characters_and_loses_nothing():
    text = ("word " * 700 + "\n\n") * 3
    pieces = bk.split(text)
    assert all(len(p) <= 3000 for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())


def test_split_text_cuts_a_single_long_word_hard():
    pieces = bk.split("x" * 7001)
    assert [len(p) for p in pieces] == [3000, 3000, 1001]


def test_answer_exactly_at_the_section_limit_is_one_section():
    blocks = ab.answer_blocks(1, "a" * 3000, model_version="v1")
    assert sections(blocks) == ["a" * 3000]


def test_huge_answer_is_cut_to_one_message_and_says_so():
    blocks = ab.answer_blocks(1, "y " * 200_000, model_version="v1",
                              sources=[{"permalink": "https://x/p1", "question": "q"}], verified=True)
    assert len(blocks) <= 50 and bk.block_text_length(blocks) <= bk.MESSAGE_TEXT_BUDGET
    assert message_error({"text": "t"}, blocks) is None
    assert all(len(s) <= 3000 for s in sections(blocks))
    assert "answer truncated" in sections(blocks)[-1]
    assert blocks[-1]["type"] == "actions"


def test_many_short_paragraphs_are_cut_at_fifty_blocks():
    blocks = ab.answer_blocks(1, "\n\n".join(["p" * 2000] * 60), model_version="v1")
    assert len(blocks) <= 50 and message_error({"text": "t"}, blocks) is None


def test_answer_blocks_have_footer_citations_badge_and_feedback_buttons():
    blocks = ab.answer_blocks(7, "Do X.", model_version="v3", verified=True,
                              sources=[{"permalink": "https://s/p1", "question": "How | X?"}])
    dumped = json.dumps(blocks, ensure_ascii=False)
    assert "Verified answer" in dumped
    assert "Based on: <https://s/p1|How / X?>" in dumped
    assert "threadtune · model v3" in dumped
    buttons = blocks[-1]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [("answer_up", "7"), ("answer_down", "7")]


def test_a_closest_answer_names_the_question_it_was_approved_for_escaped_and_has_no_badge():
    blocks = ab.answer_blocks(7, "250 EUR.", model_version="v3", mode="closest",
                              sources=[{"permalink": "https://s/p1", "question": "<!channel> limit & " + "x" * 400}])
    dumped = json.dumps(blocks, ensure_ascii=False)
    label = blocks[0]["elements"][0]["text"]
    assert "Closest approved answer" in label and "&lt;!channel&gt; limit &amp; x" in label
    assert "<!channel>" not in dumped and len(label) < 500
    assert "Verified answer" not in dumped and "Not verified" not in dumped
    assert sections(blocks) == ["250 EUR."] and "Based on: <https://s/p1|" in dumped


def test_streaming_blocks_have_no_buttons_yet():
    blocks = ab.answer_blocks(0, "partial", model_version="base", streaming=True)
    assert not [b for b in blocks if b["type"] == "actions"]
    assert "writing" in json.dumps(blocks)


def test_a_retry_value_that_does_not_fit_a_button_is_refused_not_cut():
    assert ab.retry_value({"q": "q" * 5000, "c": "C1", "t": "1.0", "u": "U1", "team": "T"}) is None
    assert ab.retry_value({"q": "質問" * 500, "c": "C1", "t": "1.0", "u": "U1", "team": "T"})  # 1,000 CJK fit
    blocks = ab.error_blocks("Oops", {"a": 12, "c": "C1", "t": "1.0", "u": "U1", "team": "T"})
    assert json.loads(blocks[-1]["elements"][0]["value"])["a"] == 12


@hsettings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=12_000), st.integers(min_value=20, max_value=3000))
def test_split_text_property_limits_and_content(text, limit):
    pieces = bk.split(text, limit)
    assert all(len(p) <= limit for p in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())


@hsettings(max_examples=40, deadline=None)
@given(st.text(max_size=200_000))
def test_answer_blocks_property_within_slack_limits(text):
    blocks = ab.answer_blocks(1, text, model_version="v1")
    assert len(blocks) <= 50
    assert all(len(s) <= 3000 for s in sections(blocks))
