"""Input that cannot stop work (#16): malformed ts, FIFOs, BOMs, overlong lines, ids that overflow."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc

from curation.candidates import add_candidate
from curation.channels import set_watched
from curation.curate import curate
from curation.datasets import MAX_IMPORT_LINE_CHARS, import_jsonl
from curation.privacy import purge_older_than
from curation.slack_export import import_export
from tests.collect.test_import import make_export
from tests.conftest import ADMIN, REVIEWER

T = "T0FAKE"


def test_an_export_message_with_a_bad_ts_is_skipped_with_the_reason_and_curate_still_runs(db, tmp_path):
    export = make_export(tmp_path / "export")
    day = json.loads((export / "help" / "2020-09-13.json").read_text())
    day += [{"type": "message", "user": "U1", "text": "broken", "ts": "not-a-number"},
            {"type": "message", "user": "U2", "text": "broken reply", "ts": "1600000007.000100",
             "thread_ts": "abc"}]
    (export / "help" / "2020-09-13.json").write_text(json.dumps(day))
    summary = import_export(db, export, T)
    assert summary.skipped["ts is not a Slack timestamp"] == 1
    assert summary.skipped["thread_ts is not a Slack timestamp"] == 1
    assert not db.execute("select count(*) from messages where text like 'broken%'").fetchone()[0]
    assert sum(curate(db, T, None).candidates.values()) == 1  # the thread of the export


def test_curate_skips_a_stored_row_with_a_bad_ts_instead_of_stopping(db):
    # as stored by an older version that did not check ts
    db["messages"].insert_all([
        {"team_id": T, "channel_id": "C1", "ts": "abc", "thread_ts": "abc", "user_id": "U1",
         "text": "How do I reset the VPN token on my laptop?", "source": "event"},
        {"team_id": T, "channel_id": "C1", "ts": "1600000001.000100", "thread_ts": "abc",
         "user_id": "U2", "text": "Use the self-service portal.", "source": "event"},
        {"team_id": T, "channel_id": "C1", "ts": "1600000010.000100", "thread_ts": "1600000010.000100",
         "user_id": "U1", "text": "Where do I file expenses for travel?", "source": "event"},
        {"team_id": T, "channel_id": "C1", "ts": "1600000011.000100", "thread_ts": "1600000010.000100",
         "user_id": "U2", "text": "In the finance portal under Travel.", "source": "event"}])
    report = curate(db, T, None)
    assert sum(report.candidates.values()) == 1 and report.bad_rows == 2
    assert "malformed ts" in report.summary()


def test_purge_never_reads_a_bad_ts_as_epoch_zero(db):
    db["messages"].insert({"team_id": T, "channel_id": "C1", "ts": "abc", "user_id": "U1",
                           "text": "kept", "source": "event"})
    assert purge_older_than(db, T, 30).messages == 0
    assert db.execute("select text from messages").fetchone()[0] == "kept"


def test_live_events_with_a_bad_ts_are_not_stored(bot, db):
    set_watched(db, T, "C1", True, ADMIN)
    bot.message("C1", "U1", "bad ts", "abc")
    bot.message("C1", "U1", "bad thread", "1700000001.000100", thread_ts="not-a-number")
    bot.event({"type": "message", "subtype": "message_deleted", "channel": "C1", "hidden": True,
               "deleted_ts": "abc", "ts": "1700000002.000100", "channel_type": "channel"})
    bot.message("C1", "U1", "good", "1700000003.000100")
    assert [r[0] for r in db.execute("select ts from messages")] == ["1700000003.000100"]


def test_a_fifo_named_like_a_day_file_is_skipped_not_opened(db, tmp_path):
    export = make_export(tmp_path / "export")
    os.mkfifo(export / "help" / "2020-09-15.json")
    result = {}
    worker = threading.Thread(target=lambda: result.update(s=import_export(db, export, T)), daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # unblock the reader so the test process can end, then fail
        with open(export / "help" / "2020-09-15.json", "w") as fh:
            fh.write("[]")
        raise AssertionError("import hung on a FIFO")
    assert result["s"].skipped["help/2020-09-15.json: not a regular file (never opened)"] == 1
    assert result["s"].messages > 0


def test_dataset_import_accepts_a_bom_on_line_one(db, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"question": "How do I reset the VPN token?",
                                                    "answer": "Use the self-service portal."}).encode()
                     + b"\n")
    report = import_jsonl(db, T, path)
    assert report.added == 1 and not report.errors


def test_dataset_import_refuses_an_overlong_line_without_reading_it_whole(db, tmp_path):
    path = tmp_path / "pairs.jsonl"
    with path.open("wb") as fh:
        fh.write(b'{"question": "' + b"x" * 30_000_000 + b'", "answer": "y"}\n')
        fh.write(json.dumps({"question": "Where do I file travel expenses?",
                             "answer": "In the finance portal under Travel."}).encode() + b"\n")
    tracemalloc.start()
    try:
        report = import_jsonl(db, T, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.added == 1
    assert report.errors == [(1, f"line is 30,000,032 bytes (limit {MAX_IMPORT_LINE_CHARS:,})")]
    assert peak < 8_000_000, f"peak {peak:,} bytes: the line was read whole"


def test_payload_ids_are_parsed_strictly():
    from curation.ids import parse_id

    assert [parse_id(v) for v in ("7", "#7", 7, " 12 ")] == [7, 7, 7, 12]
    assert [parse_id(v) for v in ("1.9", 1.9, 10**30, str(10**30), "-1", "0", True, "", None, "1e3",
                                  "٣")] == [None] * 11


def test_a_huge_or_fractional_candidate_id_in_a_modal_is_refused_clearly(bot, db, fake_slack):
    cid = add_candidate(db, T, "How do I reset the VPN token?", "Use the self-service portal.",
                        origin="manual").id
    assert cid == 1
    for bad in (10**30, 1.9, "1.9"):
        resp = bot.view_submission("review_reject_view", {"reason": {"value": {
            "type": "plain_text_input", "value": "wrong"}}},
                                   user_id=REVIEWER, private_metadata=json.dumps({"candidate_id": bad}))
        assert resp.status_code == 200, bad
        assert resp.json()["response_action"] == "errors"
        assert "out of date" in json.dumps(resp.json()["errors"])
    assert db["candidates"].get(cid)["status"] == "pending"
    resp = bot.block_action("review_approve", str(10**30), user_id=REVIEWER)
    assert resp.status_code == 200
    assert "not a candidate id" in fake_slack.wait_for("chat.postEphemeral")[0].params["text"]
