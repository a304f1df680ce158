"""The Acme demo workspace is a well-formed Slack export with the facts and noise the demo relies on."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = ROOT / "examples" / "acme-workspace"
GENERATOR = ROOT / "examples" / "make_acme_workspace.py"
ANSWERED = "white_check_mark"

# Substrings of the answer of facts that are asked in several threads, in other words, on other days.
REPEATED_FACTS = [
    "vpn.acme.internal/reset", "250 EUR", "10:00 CET", "Friday 15:00 CET", "14 characters",
    "gatekeeper.acme.internal", "it.acme.internal/lost", "toolshed.acme.internal", "wifi.acme.internal",
    "25 MB", "ed25519", "28 vacation days", "31 March", "3rd consecutive sick day", "1,500 EUR",
    "--env prod", "800 ms", "15 minutes",
]


def _day_of(ts: str) -> str:
    return datetime.fromtimestamp(float(ts), tz=timezone.utc).strftime("%Y-%m-%d")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


@pytest.fixture(scope="module")
def export():
    """channels, users and {channel: [(day file stem, message)]} read from the committed files."""
    channels = json.loads((WORKSPACE / "channels.json").read_text(encoding="utf-8"))
    users = json.loads((WORKSPACE / "users.json").read_text(encoding="utf-8"))
    messages = {}
    for channel in channels:
        folder = WORKSPACE / channel["name"]
        messages[channel["name"]] = [
            (path.stem, msg)
            for path in sorted(folder.glob("*.json"))
            for msg in json.loads(path.read_text(encoding="utf-8"))
        ]
    return channels, users, messages


def _threads(messages):
    """{(channel, root ts): (root, [replies])} for human roots that have replies or ask a question."""
    out = {}
    for channel, rows in messages.items():
        replies = defaultdict(list)
        for _, m in rows:
            if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
                replies[m["thread_ts"]].append(m)
        for _, m in rows:
            top = m.get("thread_ts", m["ts"]) == m["ts"]
            if top and "subtype" not in m and (m.get("reply_count") or m["text"].rstrip().endswith("?")):
                out[(channel, m["ts"])] = (m, replies.get(m["ts"], []))
    return out


def _all_texts(messages):
    return [m.get("text", "") for rows in messages.values() for _, m in rows]


def test_channels_are_the_four_support_channels_with_day_folders(export):
    channels, _, messages = export
    names = {c["name"] for c in channels}
    assert 3 <= len(channels) <= 4
    assert names == {"it-help", "hr-questions", "eng-oncall", "announcements"}
    for name in names:
        files = list((WORKSPACE / name).iterdir())
        assert files and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}\.json", f.name) for f in files)
        assert len(files) >= 4, f"{name} should span several days"
        assert messages[name]


def test_every_message_sits_in_the_day_file_of_its_ts_and_ts_is_unique(export):
    _, _, messages = export
    for channel, rows in messages.items():
        seen = set()
        for day, m in rows:
            assert m["type"] == "message"
            assert re.fullmatch(r"\d{10}\.\d{6}", m["ts"]), m["ts"]
            assert _day_of(m["ts"]) == day, (channel, m["ts"], day)
            assert m["ts"] not in seen, (channel, m["ts"])
            seen.add(m["ts"])


def test_replies_reference_an_existing_parent_whose_counts_match(export):
    _, _, messages = export
    for channel, rows in messages.items():
        by_ts = {m["ts"]: m for _, m in rows}
        replies = defaultdict(list)
        for _, m in rows:
            if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
                assert m["thread_ts"] in by_ts, (channel, m["ts"])
                assert float(m["ts"]) > float(m["thread_ts"])
                replies[m["thread_ts"]].append(m)
        for ts, m in by_ts.items():
            if m.get("reply_count"):
                got = replies[ts]
                assert m["thread_ts"] == ts
                assert m["reply_count"] == len(got)
                assert [r["ts"] for r in m["replies"]] == sorted(r["ts"] for r in got)
                assert m["latest_reply"] == max(r["ts"] for r in got)


def test_workspace_has_40_to_80_threads_and_most_answers_carry_the_check_mark(export):
    _, _, messages = export
    threads = _threads(messages)
    assert 40 <= len(threads) <= 80
    answered = [(root, rs) for root, rs in threads.values() if any(r.get("user") != root["user"] for r in rs)]
    checked = [
        (root, rs) for root, rs in answered
        if any(x["name"] == ANSWERED for r in rs for x in r.get("reactions", []))
    ]
    assert len(checked) >= 0.7 * len(answered)
    assert len(checked) < len(answered), "some answered threads should lack the reaction"
    unanswered = [root for root, rs in threads.values() if not rs]
    assert len(unanswered) >= 3
    for root, rs in checked:
        assert 1 <= len(rs) <= 4


def test_noise_is_present_bot_edit_tombstone_joins_chitchat_and_announcement(export):
    _, users, messages = export
    rows = [m for ms in messages.values() for _, m in ms]
    bots = [m for m in rows if m.get("subtype") == "bot_message"]
    assert bots and all(m.get("bot_id") for m in bots)
    bot_ids = {u["profile"].get("bot_id") for u in users if u["is_bot"]}
    assert {m["bot_id"] for m in bots} <= bot_ids
    assert any("edited" in m and m["edited"]["ts"] for m in rows)
    assert any(m.get("subtype") == "tombstone" and m["text"] == "This message was deleted." for m in rows)
    assert any(m.get("subtype") == "channel_join" for m in rows)
    assert any(re.fullmatch(r"(:[a-z_+\-0-9]+:\s*)+", m.get("text", "")) for m in rows), "an emoji-only message"
    announcements = [m for _, m in messages["announcements"] if "subtype" not in m and len(m["text"]) > 300]
    assert announcements


def test_users_cover_every_author_and_include_a_bot(export):
    _, users, messages = export
    assert 10 <= len(users) <= 16
    for u in users:
        assert {"id", "name", "real_name", "is_bot", "profile"} <= u.keys()
        assert "display_name" in u["profile"]
    ids = {u["id"] for u in users}
    assert any(u["is_bot"] for u in users)
    authors = {m["user"] for ms in messages.values() for _, m in ms if "user" in m}
    assert authors - {"USLACKBOT"} <= ids


@pytest.mark.parametrize("fact", REPEATED_FACTS)
def test_fact_is_asked_in_several_threads_on_different_days(export, fact):
    _, _, messages = export
    hits = [
        (root, rs) for root, rs in _threads(messages).values()
        if any(fact in r["text"] and r.get("user") != root["user"] for r in rs)
    ]
    assert len(hits) >= 2, fact
    assert len({_norm(root["text"]) for root, _ in hits}) == len(hits), "each asks in other words"
    assert len({_day_of(root["ts"]) for root, _ in hits}) >= 2


def test_heldout_questions_are_new_phrasings_with_answers(export):
    _, _, messages = export
    lines = (WORKSPACE / "heldout.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    assert 12 <= len(rows) <= 25
    texts = [_norm(t) for t in _all_texts(messages)]
    for row in rows:
        assert set(row) == {"question", "answer"}
        assert row["question"].strip() and row["answer"].strip()
        q = _norm(row["question"])
        assert not any(q in t for t in texts), f"held-out question appears verbatim: {row['question']}"
    assert len({_norm(r["question"]) for r in rows}) == len(rows)


def test_handbook_is_a_markdown_document_with_headings():
    text = (WORKSPACE / "handbook.md").read_text(encoding="utf-8")
    assert text.startswith("# ")
    assert len(re.findall(r"^##+ ", text, flags=re.M)) >= 4
    assert 2000 <= len(text) <= 12000
    assert "vpn.acme.internal/reset" in text and "250 EUR" in text


def test_committed_files_match_the_generator(tmp_path):
    spec = importlib.util.spec_from_file_location("make_acme_workspace", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(WORKSPACE) for p in WORKSPACE.rglob("*")
        if p.is_file() and p.suffix in (".json", ".jsonl")
    )
    assert generated == committed
    for rel in generated:
        assert (tmp_path / rel).read_bytes() == (WORKSPACE / rel).read_bytes(), rel
