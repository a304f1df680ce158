"""`threadtune import`: Slack exports as zip or folder, idempotent, all or nothing, hostile input."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from curation.errors import ImportFormatError
from curation.slack_export import import_export
from curation.status import status_counts

T = "T0FAKE"


def make_export(root: Path) -> Path:
    """A small export: two channels, a thread with an answered reply, noise, a DM folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "channels.json").write_text(json.dumps([{"id": "C1", "name": "help"},
                                                    {"id": "C2", "name": "random"}]))
    (root / "users.json").write_text(json.dumps([
        {"id": "U1", "name": "ana", "real_name": "Ana Lima", "profile": {"display_name": "Ana"}},
        {"id": "U2", "name": "ben", "profile": {}}]))
    (root / "dms.json").write_text(json.dumps([{"id": "D1", "members": ["U1", "U2"]}]))
    day = [
        {"type": "message", "user": "U1", "text": "How do I reset the VPN token?", "ts": "1600000000.000100",
         "thread_ts": "1600000000.000100", "reply_count": 2},
        {"type": "message", "user": "U2", "text": "Use the portal.", "ts": "1600000001.000100",
         "thread_ts": "1600000000.000100",
         "reactions": [{"name": "white_check_mark", "users": ["U1"], "count": 1}]},
        {"type": "message", "user": "U1", "text": "Thanks!", "ts": "1600000002.000100",
         "thread_ts": "1600000000.000100"},
        {"type": "message", "subtype": "channel_join", "user": "U2", "text": "joined", "ts": "1600000003.000100"},
        {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": "zap", "ts": "1600000004.000100"},
        {"type": "message", "subtype": "future_thing", "user": "U2", "text": "new kind", "ts": "1600000005.000100"},
    ]
    (root / "help").mkdir(exist_ok=True)
    (root / "help" / "2020-09-13.json").write_text(json.dumps(day))
    (root / "random").mkdir(exist_ok=True)
    (root / "random" / "2020-09-14.json").write_text(json.dumps(
        [{"type": "message", "user": "U2", "text": "lunch?", "ts": "1600100000.000100"}]))
    (root / "D1").mkdir(exist_ok=True)
    (root / "D1" / "2020-09-14.json").write_text(json.dumps(
        [{"type": "message", "user": "U1", "text": "private", "ts": "1600100001.000100"}]))
    (root / "unknown-folder").mkdir(exist_ok=True)
    (root / "unknown-folder" / "2020-09-14.json").write_text("[]")
    return root


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return dest


def test_folder_import_stores_channels_users_messages_and_threads(db, tmp_path):
    summary = import_export(db, make_export(tmp_path / "export"), T)
    assert (summary.channels, summary.users, summary.messages, summary.threads) == (3, 2, 5, 1)
    assert summary.skipped == {"system message (channel_join)": 1, "bot message": 1,
                               "direct message (THREADTUNE_KEEP_DMS is off)": 1,
                               "folder unknown-folder/ not listed in channels.json": 1}
    assert status_counts(db, T)["threads"] == 1
    answered = db["messages"].get((T, "C1", "1600000001.000100"))
    assert answered["answered"] == 1 and answered["source"] == "import"
    assert db["messages"].get((T, "C1", "1600000005.000100"))["subtype"] == "future_thing"
    assert db["users"].get((T, "U1"))["display_name"] == "Ana"
    assert db.execute("select count(*) from messages where channel_id = 'D1'").fetchone()[0] == 0


def test_reimport_is_idempotent(db, tmp_path):
    export = make_export(tmp_path / "export")
    import_export(db, export, T)
    again = import_export(db, export, T)
    assert again.new_messages == 0 and again.messages == 5
    assert db["messages"].count == 5


def test_zip_import_matches_folder_import_and_tolerates_a_top_folder(db, tmp_path):
    export = make_export(tmp_path / "export")
    summary = import_export(db, zip_folder(export, tmp_path / "e.zip", prefix="Acme Slack export/"), T)
    assert (summary.messages, summary.threads, summary.users) == (5, 1, 2)


def test_dms_are_imported_with_keep_dms(db, tmp_path):
    summary = import_export(db, make_export(tmp_path / "export"), T, keep_dms=True)
    assert summary.messages == 6
    assert db["channels"].get((T, "D1"))["is_im"] == 1


def test_missing_users_json_and_empty_day_files_are_tolerated(db, tmp_path):
    export = make_export(tmp_path / "export")
    (export / "users.json").unlink()
    (export / "help" / "2020-09-15.json").write_text("[]")
    assert import_export(db, export, T).users == 0
    assert db["messages"].count == 5


def test_corrupt_day_file_is_named_and_nothing_is_imported(db, tmp_path):
    export = make_export(tmp_path / "export")
    (export / "random" / "2020-09-14.json").write_text('[{"ts": "1.1", "text": "unterminated')
    with pytest.raises(ImportFormatError, match=r"random/2020-09-14\.json: not valid JSON .*line 1"):
        import_export(db, export, T)
    assert db["messages"].count == 0 and db["channels"].count == 0 and db["users"].count == 0


def test_day_file_that_is_not_a_list_is_named(db, tmp_path):
    export = make_export(tmp_path / "export")
    (export / "help" / "2020-09-13.json").write_text('{"messages": []}')
    with pytest.raises(ImportFormatError, match=r"help/2020-09-13\.json: expected a JSON list"):
        import_export(db, export, T)


@pytest.mark.parametrize("entry", ["../evil.json", "/etc/evil.json", "help/../../evil.json",
                                   "..\\evil.json", "C:/evil.json"])
def test_zip_slip_is_refused(db, tmp_path, entry):
    archive = zip_folder(make_export(tmp_path / "export"), tmp_path / "e.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(entry, "[]")
    with pytest.raises(ImportFormatError, match="zip slip"):
        import_export(db, archive, T)
    assert db["messages"].count == 0
    assert not (tmp_path / "evil.json").exists()


def test_symlink_in_zip_is_refused(db, tmp_path):
    archive = zip_folder(make_export(tmp_path / "export"), tmp_path / "e.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        info = zipfile.ZipInfo("help/2020-09-20.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ImportFormatError, match="symbolic link"):
        import_export(db, archive, T)
    assert db["messages"].count == 0


def test_symlink_in_folder_is_refused(db, tmp_path):
    export = make_export(tmp_path / "export")
    os.symlink("/etc/hostname", export / "help" / "2020-09-21.json")
    with pytest.raises(ImportFormatError, match="symbolic link"):
        import_export(db, export, T)
    assert db["messages"].count == 0


def test_zip_bomb_over_the_size_cap_is_refused_before_reading(db, tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("channels.json", "[]")
        zf.writestr("help/2020-01-01.json", "[" + " " * (8 * 2**20) + "]")
    assert archive.stat().st_size < 100_000
    with pytest.raises(ImportFormatError, match="exceeds the import cap.*THREADTUNE_IMPORT_MAX_MB"):
        import_export(db, archive, T, max_bytes=2**20)


def test_not_an_export_says_what_is_expected(db, tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ImportFormatError, match="no channels.json"):
        import_export(db, tmp_path / "x", T)
    (tmp_path / "y.zip").write_bytes(b"not a zip")
    with pytest.raises(ImportFormatError, match="not a readable zip"):
        import_export(db, tmp_path / "y.zip", T)
    with pytest.raises(ImportFormatError, match="no such file"):
        import_export(db, tmp_path / "missing.zip", T)


def test_import_does_not_bring_back_a_message_deleted_live(db, tmp_path):
    from curation.deletion import apply_delete

    apply_delete(db, T, "C1", "1600000001.000100")
    import_export(db, make_export(tmp_path / "export"), T)
    row = db["messages"].get((T, "C1", "1600000001.000100"))
    assert row["deleted"] == 1 and row["text"] is None


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADTUNE_", "SLACK_"))}
    env.update({"THREADTUNE_DATA_DIR": str(data_dir), "THREADTUNE_TEAM_ID": T, "COLUMNS": "200"})
    return subprocess.run([sys.executable, "-m", "threadtune.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=data_dir.parent)


def test_cli_import_prints_a_summary_and_a_one_line_error_for_a_corrupt_file(tmp_path):
    export = make_export(tmp_path / "export")
    out = run_cli("import", str(export), "--json", data_dir=tmp_path / "data")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["messages"] == 5
    out = run_cli("import", str(export), data_dir=tmp_path / "data")
    assert out.returncode == 0 and "skipped: bot message" in out.stdout
    (export / "help" / "2020-09-13.json").write_text("{oops")
    out = run_cli("import", str(export), data_dir=tmp_path / "data")
    assert out.returncode == 2
    assert "help/2020-09-13.json" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.realdata
def test_real_julia_export_imports_fast_and_idempotently(db, shared_data):
    export = shared_data / "julialang-slack"
    start = time.monotonic()
    summary = import_export(db, export, T)
    elapsed = time.monotonic() - start
    assert summary.channels == 11 and summary.users > 500
    assert summary.messages > 30_000 and summary.threads > 2_500
    assert summary.skipped["bot message"] > 1_000  # the Zapier bot
    counts = status_counts(db, T)
    assert counts["messages"] > 30_000 and counts["threads"] > 2_500
    assert elapsed < 30, f"import took {elapsed:.1f}s"
    assert import_export(db, export, T).new_messages == 0
    hits = db.execute("select count(*) from messages_fts where messages_fts match 'DataFrame'").fetchone()[0]
    assert hits > 10


def fts_count(db, word: str) -> int:
    return db.execute("select count(*) from messages_fts where messages_fts match ?", [word]).fetchone()[0]


def test_search_index_stays_exact_across_imports_edits_and_failures(db, tmp_path):
    from curation.messages import upsert_message

    export = make_export(tmp_path / "export")
    upsert_message(db, T, "C1", {"ts": "1600000002.000100", "user": "U1", "text": "oldword"}, "event")
    import_export(db, export, T)
    assert fts_count(db, "portal") == 1 and fts_count(db, "oldword") == 0  # edited by the export
    # a later export: an edit and a tombstone for an existing parent
    day = json.loads((export / "help" / "2020-09-13.json").read_text())
    day[1].update(text="Use the gateway.", edited={"ts": "1600000009.000000"})
    day[0] = {"type": "message", "subtype": "tombstone", "ts": day[0]["ts"], "text": "This message was deleted.",
              "thread_ts": day[0]["ts"], "reply_count": 2, "hidden": True}
    (export / "help" / "2020-09-13.json").write_text(json.dumps(day))
    summary = import_export(db, export, T)
    assert summary.deleted == 1
    assert fts_count(db, "portal") == 0 and fts_count(db, "gateway") == 1 and fts_count(db, "VPN") == 0
    # a failed import leaves the per-row triggers in place: a live message is still indexed
    (export / "random" / "2020-09-14.json").write_text("[")
    with pytest.raises(ImportFormatError):
        import_export(db, export, T)
    upsert_message(db, T, "C1", {"ts": "1700000000.000100", "user": "U1", "text": "freshword"}, "event")
    assert fts_count(db, "freshword") == 1
    triggers = {r[0] for r in db.execute("select name from sqlite_master where type = 'trigger'")}
    assert {"messages_ai", "messages_ad", "messages_au"} <= triggers
    db.execute("insert into messages_fts (messages_fts) values ('integrity-check')")


def test_hostile_listings_and_messages_are_skipped_not_fatal(db, tmp_path):
    export = make_export(tmp_path / "export")
    channels = json.loads((export / "channels.json").read_text())
    (export / "channels.json").write_text(json.dumps(channels + [{"id": 5}, "C9", {"id": ["x"]},
                                                                 {"id": "C7", "name": {"x": 1}}]))
    (export / "users.json").write_text(json.dumps([{"id": "U1", "name": 7, "profile": "odd"}, 3, {"id": None}]))
    day = json.loads((export / "help" / "2020-09-13.json").read_text())
    day += [7, "text", None, {"ts": ["1"]}, {"ts": "1600000009.000100", "user": "U1", "text": {"t": 1},
                                             "reactions": "lots", "edited": 5},
            {"ts": "1600000010.000100", "user": "U1", "text": "x", "thread_ts": ["x"]}]
    (export / "help" / "2020-09-13.json").write_text(json.dumps(day))
    summary = import_export(db, export, T)
    assert summary.skipped["channels.json entry without an id"] == 3
    assert summary.skipped["no ts"] == 4
    assert summary.skipped["thread_ts is not a Slack timestamp"] == 1
    assert summary.users == 1 and db["users"].get((T, "U1"))["name"] == "7"
    odd = db["messages"].get((T, "C1", "1600000009.000100"))
    assert odd["text"] == "" and odd["thread_ts"] is None and odd["reactions"] is None


def test_escaped_lone_surrogates_anywhere_are_made_safe(db, tmp_path):
    export = make_export(tmp_path / "export")
    (export / "users.json").write_text('[{"id": "U1", "name": "ana\\udcff", "profile": {}}]')
    (export / "random" / "2020-09-14.json").write_text(
        '[{"type": "message", "user": "U2", "text": "bad \\ud800 and good \\ud83d\\ude00", "ts": "1600100000.000100"}]')
    import_export(db, export, T)
    assert db["users"].get((T, "U1"))["name"] == "ana?"
    assert db["messages"].get((T, "C2", "1600100000.000100"))["text"] == "bad ? and good 😀"
