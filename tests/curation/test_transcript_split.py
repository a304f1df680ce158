"""Threads become readable transcripts; long text is split for prompts."""

from __future__ import annotations

from curation.split import split_markdown, split_transcript
from curation.transcript import render_text, thread_transcript
from tests.curation.helpers import TEAM, add_thread, vpn_thread


def test_transcript_has_names_resolved_mentions_links_code_and_answer_flag(db):
    ts = vpn_thread(db)
    t = thread_transcript(db, TEAM, "C0HELP", ts)
    text = t.text
    assert text.startswith("Alice (question):\nHow do I reset my VPN password? @Bob any idea?")
    assert "the reset page (https://vpn.example.com/reset)" in text
    assert "```vpnctl reset --user alice```" in text
    assert "Carol [ANSWERED: marked as the solution]:" in text
    assert t.answered is not None and t.answered.name == "Carol"


def test_deleted_and_bot_messages_are_left_out(db):
    ts = add_thread(db, "C1", "1700000200.000100", ("U1", "How do I build the docs?"), [
        ("U2", "secret text that was deleted", {"deleted": 1}),
        ("U9", "I am a bot", {"bot_id": "B1", "subtype": "bot_message"}),
        ("U3", "Run make docs in the repo root."),
    ])
    text = thread_transcript(db, TEAM, "C1", ts).text
    assert "secret text" not in text and "I am a bot" not in text
    assert "make docs" in text


def test_render_text_unescapes_and_resolves_channels_and_specials():
    out = render_text("a &gt; b &amp;&amp; <#C1|general> <!here> <mailto:x@y.org|x@y.org>", {}, {})
    assert out == "a > b && #general @here x@y.org"


def test_long_transcript_splits_with_overlap():
    text = "\n\n".join(f"User{i}:\n" + ("word " * 80) + f"marker{i}" for i in range(40))
    chunks = split_transcript(text, chunk_chars=1000, overlap_chars=200)
    assert len(chunks) > 5
    assert all(len(c) <= 1000 for c in chunks)
    assert all(f"marker{i}" in text for i in range(40))


def test_markdown_splits_by_header_and_keeps_header_path():
    doc = "# Install\nIntro.\n## Linux\nUse apt.\n```\napt install foo\n```\n## Mac\nUse brew install foo.\n"
    chunks = split_markdown(doc)
    assert any(c.startswith("# Install > ## Linux") and "apt install foo" in c for c in chunks)
    assert any(c.startswith("# Install > ## Mac") for c in chunks)
