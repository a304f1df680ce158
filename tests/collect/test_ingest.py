"""Store writes shared by capture, backfill and import: upserts, edits, deletions, reactions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from curation.candidates import add_candidate
from curation.channels import is_watched, set_watched, upsert_channel
from curation.deletion import apply_delete, mark_derived_stale
from curation.event_ids import first_delivery, prune_events_seen
from curation.messages import apply_edit, apply_reaction, upsert_message, upsert_rows
from curation.rows import message_row, skip_reason

T = "T0FAKE"


def msg(ts: str, text: str = "hello", user: str = "U1", **extra) -> dict:
    return {"type": "message", "ts": ts, "user": user, "text": text, **extra}


def fts(db, word: str) -> int:
    return db.execute("select count(*) from messages_fts where messages_fts match ?", [word]).fetchone()[0]


def row(db, ts: str, channel: str = "C1") -> dict:
    return next(iter(db.query("select * from messages where team_id = ? and channel_id = ? and ts = ?",
                              [T, channel, ts])))


def test_upserting_the_same_message_twice_stores_it_once(db):
    assert upsert_message(db, T, "C1", msg("1.1"), "event")
    assert not upsert_message(db, T, "C1", msg("1.1"), "event")
    assert db["messages"].count == 1


def test_reply_links_parent_as_thread(db):
    upsert_message(db, T, "C1", msg("1.1", "how do I"), "event")
    upsert_message(db, T, "C1", msg("1.2", "like so", user="U2", thread_ts="1.1"), "event")
    parent = row(db, "1.1")
    assert parent["thread_ts"] == "1.1" and parent["reply_count"] == 1
    assert row(db, "1.2")["thread_ts"] == "1.1"


def test_deleted_message_leaves_no_text_in_store_or_search(db):
    upsert_message(db, T, "C1", msg("1.1", "my secret password hunter2"), "event")
    assert fts(db, "hunter2") == 1
    apply_delete(db, T, "C1", "1.1")
    stored = row(db, "1.1")
    assert stored["deleted"] == 1 and not stored["text"]
    assert fts(db, "hunter2") == 0


def test_deleted_message_is_not_brought_back_by_a_later_import_or_backfill(db):
    apply_delete(db, T, "C1", "1.1")  # never seen: a tombstone row
    upsert_message(db, T, "C1", msg("1.1", "resurrected text"), "import")
    assert row(db, "1.1")["deleted"] == 1 and not row(db, "1.1")["text"]


def test_older_copy_never_overwrites_a_newer_edit(db):
    upsert_message(db, T, "C1", msg("1.1", "v1"), "event")
    assert apply_edit(db, T, "C1", "1.1", "v3", "3.0")
    assert not apply_edit(db, T, "C1", "1.1", "v2", "2.0")
    upsert_message(db, T, "C1", msg("1.1", "v1"), "import")  # export taken before the edit
    assert row(db, "1.1")["text"] == "v3"
    upsert_message(db, T, "C1", msg("1.1", "v4", edited={"ts": "4.0"}), "backfill")
    assert row(db, "1.1")["text"] == "v4"


def test_delete_marks_derived_candidates_stale_with_a_review_row(db):
    upsert_message(db, T, "C1", msg("1.1", "How do I reset the VPN token?"), "event")
    upsert_message(db, T, "C1", msg("1.2", "Use the portal at portal.example", user="U2",
                                    thread_ts="1.1"), "event")
    added = add_candidate(db, T, "How do I reset the VPN token?", "Use the self-service portal.",
                          origin="thread", sources=[{"kind": "message", "channel_id": "C1", "ts": "1.1"}])
    other = add_candidate(db, "T0OTHER", "How do I reset the VPN token?", "Use the portal.",
                          origin="thread", sources=[{"kind": "message", "channel_id": "C1", "ts": "1.1"}])
    # deleting a reply stales what came from its thread
    assert apply_delete(db, T, "C1", "1.2") == [added.id]
    cand = db["candidates"].get(added.id)
    assert cand["stale"] == 1 and "deleted" in cand["stale_reason"]
    reviews = list(db.query("select * from reviews where candidate_id = ?", [added.id]))
    assert [(r["action"], r["team_id"]) for r in reviews] == [("stale", T)]
    assert db["candidates"].get(other.id)["stale"] == 0  # another team's pair is untouched
    # marking again adds nothing
    assert mark_derived_stale(db, T, "C1", "1.1", "again") == []


def test_answered_reaction_marks_and_unmarks_the_reply(db):
    upsert_message(db, T, "C1", msg("1.2", "fixed", thread_ts="1.1"), "event")
    kw = {"answered_reaction": "white_check_mark"}
    apply_reaction(db, T, "C1", "1.2", "white_check_mark", "U1", added=True, **kw)
    apply_reaction(db, T, "C1", "1.2", "white_check_mark", "U2", added=True, **kw)
    apply_reaction(db, T, "C1", "1.2", "white_check_mark", "U1", added=False, **kw)
    assert row(db, "1.2")["answered"] == 1
    apply_reaction(db, T, "C1", "1.2", "white_check_mark", "U2", added=False, **kw)
    assert row(db, "1.2")["answered"] == 0
    assert not apply_reaction(db, T, "C1", "9.9", "white_check_mark", "U1", added=True, **kw)


def test_first_delivery_is_true_once_per_event_and_scope(db):
    assert first_delivery(db, "Ev1", T)
    assert not first_delivery(db, "Ev1", T)
    assert first_delivery(db, "Ev1", T, scope="capture")
    assert first_delivery(db, None, T)


def test_watch_keeps_name_and_flag(db):
    set_watched(db, T, "C1", True, "U0ADMIN", name="help")
    upsert_channel(db, T, "C1")  # a later sighting without a name
    ch = db["channels"].get((T, "C1"))
    assert ch["name"] == "help" and ch["watched"] == 1
    assert is_watched(db, T, "C1") and not is_watched(db, "T0OTHER", "C1")


@pytest.mark.parametrize("m, reason", [
    ({"ts": "1.1", "subtype": "channel_join", "user": "U1"}, "system message (channel_join)"),
    ({"ts": "1.1", "subtype": "bot_message", "bot_id": "B1"}, "bot message"),
    ({"ts": "1.1", "user": "U1", "bot_id": "B1"}, "bot message"),
    ({"user": "U1", "text": "x"}, "no ts"),
    ({"ts": "1.1", "subtype": "some_future_subtype", "user": "U1", "text": "x"}, None),
])
def test_skip_reason(m, reason):
    assert skip_reason(m) == reason


@hsettings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["ts", "text", "user", "thread_ts", "subtype", "edited",
                                        "reactions", "reply_count", "bot_id"]),
                       st.one_of(st.none(), st.text(max_size=20), st.integers(), st.lists(st.text()),
                                 st.dictionaries(st.text(max_size=5), st.text(max_size=5)))))
def test_message_row_never_crashes_on_odd_message_objects(m):
    if skip_reason(m) is not None:
        return
    try:
        row_ = message_row(T, "C1", m, "import")
    except (TypeError, ValueError, AttributeError):
        pytest.fail(f"message_row crashed on {m!r}")
    assert row_[2] == str(m["ts"])


def test_old_event_ids_are_pruned(db):
    first_delivery(db, "EvOLD", T)
    db.execute("update events_seen set received_at = '2000-01-01T00:00:00+00:00'")
    first_delivery(db, "EvNEW", T)
    assert prune_events_seen(db) == 1
    assert [r[0] for r in db.execute("select event_id from events_seen")] == ["EvNEW"]


def test_batch_mixing_new_and_changed_rows_applies_both(db):
    upsert_message(db, T, "C1", msg("1.1", "old text"), "event")  # FTS triggers active
    rows = [message_row(T, "C1", msg("1.1", "new text", edited={"ts": "2.0"}), "backfill"),
            message_row(T, "C1", msg("1.2", "brand new"), "backfill"),
            message_row(T, "C1", msg("1.3", "also new"), "backfill")]
    assert upsert_rows(db, rows) == 3
    assert row(db, "1.1")["text"] == "new text"
    assert fts(db, "old") == 0 and fts(db, "brand") == 1
    assert upsert_rows(db, rows) == 0


def test_lone_surrogates_are_replaced_and_other_unicode_kept(db):
    odd = "\u202eمرحبا\u200b\u200d🧑🏽‍💻 nul\x00"
    upsert_message(db, T, "C1", msg("1.1", odd + " \udcff"), "event")
    assert row(db, "1.1")["text"] == odd + " ?"
    apply_edit(db, T, "C1", "1.1", "edit \ud800", "2.0")
    assert row(db, "1.1")["text"] == "edit ?"
