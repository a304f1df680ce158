"""Import a Slack workspace export (a zip or its unpacked folder) into the store.

Slack's standard layout: ``channels.json`` (public channels), optional ``groups.json`` (private),
``dms.json``/``mpims.json`` (direct messages), ``users.json``, and one folder per conversation with
``<YYYY-MM-DD>.json`` day files, each a JSON list of message objects.

The import is all or nothing (one transaction) and idempotent (messages are upserted by
``(team_id, channel_id, ts)``). The archive is checked before anything is read: entries that would
escape the folder (zip slip), symlinks, and archives larger than the size cap are refused.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlite_utils import Database

from curation.channels import upsert_channels
from curation.deletion import apply_delete
from curation.errors import ImportFormatError
from curation.fts import deferred_fts
from curation.messages import upsert_rows
from curation.rows import clean_text, message_row, skip_reason
from curation.store import now, transaction
from curation.users import upsert_users

DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
#: Listing files and what kind of conversation their folders hold.
LISTINGS = {"channels.json": "channel", "groups.json": "private", "mpims.json": "mpim",
            "dms.json": "im"}
_BATCH = 20_000

Progress = Callable[[int, int, str], None]


@dataclass
class ImportSummary:
    """What an import did; ``skipped`` counts messages (and folders) left out, by reason."""

    channels: int = 0
    users: int = 0
    messages: int = 0  # message objects stored (new or already present)
    new_messages: int = 0
    threads: int = 0
    deleted: int = 0
    files: int = 0
    skipped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"channels": self.channels, "users": self.users, "messages": self.messages,
                "new_messages": self.new_messages, "threads": self.threads,
                "deleted": self.deleted, "files": self.files, "skipped": dict(self.skipped)}


# --- reading an archive safely --------------------------------------------------------------------

class _Archive:
    """Uniform read access to a zip or a folder, after the safety checks."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._zip: zipfile.ZipFile | None = None
        self._sizes: dict[str, int] = {}
        #: Entries that are not regular files (a FIFO, socket or device): never opened.
        self.irregular: list[str] = []
        if path.is_dir():
            self._scan_folder()
        elif path.is_file():
            self._scan_zip()
        else:
            raise ImportFormatError(f"{path}: no such file or folder; give a Slack export .zip or "
                                    "its unpacked folder")

    def _refuse_size(self, total: int) -> None:
        raise ImportFormatError(
            f"{self.path}: uncompressed size {total / 2**20:.0f} MiB exceeds the import cap of "
            f"{self.max_bytes / 2**20:.0f} MiB; nothing was imported (raise THREADTUNE_IMPORT_MAX_MB "
            "if this export is genuine)")

    def _scan_folder(self) -> None:
        total = 0
        for dirpath, dirnames, filenames in os.walk(self.path, followlinks=False):
            for name in dirnames + filenames:
                full = Path(dirpath, name)
                if full.is_symlink():
                    raise ImportFormatError(
                        f"{full}: is a symbolic link; exports never contain links, so the import "
                        "refuses it (remove the link and run again)")
            for name in filenames:
                full = Path(dirpath, name)
                rel = full.relative_to(self.path).as_posix()
                st = full.lstat()
                if not stat.S_ISREG(st.st_mode):  # reading a FIFO would wait forever
                    self.irregular.append(rel)
                    continue
                self._sizes[rel] = st.st_size
                total += self._sizes[rel]
                if total > self.max_bytes:
                    self._refuse_size(total)

    def _scan_zip(self) -> None:
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as err:
            raise ImportFormatError(f"{self.path}: not a readable zip ({err}); give a Slack export "
                                    ".zip or its unpacked folder") from None
        total = 0
        for info in self._zip.infolist():
            name = info.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if (name.startswith(("/", "\\")) or "\\" in name or ".." in parts
                    or (parts and ":" in parts[0])):
                raise ImportFormatError(
                    f"{self.path}: entry {name!r} would be written outside the export folder "
                    "(zip slip); the archive is refused and nothing was imported")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ImportFormatError(
                    f"{self.path}: entry {name!r} is a symbolic link; exports never contain links, "
                    "so the archive is refused and nothing was imported")
            if info.is_dir():
                continue
            total += info.file_size
            if total > self.max_bytes:
                self._refuse_size(total)
            self._sizes[name] = info.file_size

    def names(self) -> list[str]:
        """Relative POSIX paths of every file."""
        return list(self._sizes)

    def read(self, name: str) -> bytes:
        """The bytes of one file; a damaged zip entry is reported by name."""
        if self._zip is None:
            try:
                return _read_regular(self.path / name)
            except OSError as err:
                raise ImportFormatError(f"{self.path / name}: cannot be read ({err.strerror}); "
                                        "nothing was imported") from None
        try:
            with self._zip.open(name) as f:
                data = f.read(self._sizes[name] + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as err:
            raise ImportFormatError(f"{self.path}: entry {name} is damaged ({err}); nothing was "
                                    "imported (re-download the export)") from None
        if len(data) > self._sizes[name]:  # a header that lies about the size
            raise ImportFormatError(f"{self.path}: entry {name} is larger than its header says; "
                                    "the archive is refused and nothing was imported")
        return data

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path``, opened without blocking and only if it is a regular file (it may have
    been swapped for a FIFO since the folder was scanned)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        return fh.read()


# JSON may escape a lone UTF-16 surrogate ("\udcff"), which no UTF-8 store can hold.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _clean(value: Any) -> Any:
    """``value`` with every string made valid UTF-8 (see :func:`curation.rows.clean_text`)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): _clean(v) for k, v in value.items()}
    return value


def _load_json(archive: _Archive, name: str, kind: type) -> Any:
    data = archive.read(name)
    try:
        value = json.loads(data)
    except UnicodeDecodeError as err:
        raise ImportFormatError(f"{name}: not UTF-8 text ({err.reason} at byte {err.start}); nothing "
                                "was imported (fix or remove the file and run again)") from None
    except json.JSONDecodeError as err:
        raise ImportFormatError(f"{name}: not valid JSON ({err.msg} at line {err.lineno} column "
                                f"{err.colno}); nothing was imported (fix or remove the file and "
                                "run again)") from None
    if _ESCAPED_SURROGATE.search(data):
        value = _clean(value)
    if not isinstance(value, kind):
        raise ImportFormatError(f"{name}: expected a JSON {kind.__name__}, found "
                                f"{type(value).__name__}; nothing was imported (fix or remove "
                                "the file and run again)")
    return value


# --- the import ---------------------------------------------------------------------------------

def import_export(db: Database, path: Path | str, team_id: str, *, keep_dms: bool = False,
                  max_bytes: int = 2048 * 2**20, answered_reaction: str = "white_check_mark",
                  progress: Progress | None = None) -> ImportSummary:
    """Import the export at ``path`` for ``team_id`` in one transaction; returns the summary.

    ``progress(done, total, name)`` is called after each day file. Raises ImportFormatError naming
    the file for anything unreadable, and then nothing is written.
    """
    archive = _Archive(Path(path), max_bytes)
    try:
        return _import(db, archive, team_id, keep_dms=keep_dms,
                       answered_reaction=answered_reaction, progress=progress)
    finally:
        archive.close()


def _import(db: Database, archive: _Archive, team_id: str, *, keep_dms: bool,
            answered_reaction: str, progress: Progress | None) -> ImportSummary:
    names = archive.names()
    listings = sorted((n for n in names if PurePosixPath(n).name in LISTINGS),
                      key=lambda n: n.count("/"))
    if not listings:
        raise ImportFormatError(f"{archive.path}: no channels.json found; is this a Slack workspace "
                                "export? (expected channels.json, users.json and "
                                "<channel>/<YYYY-MM-DD>.json)")
    root = PurePosixPath(listings[0]).parent
    prefix = "" if str(root) == "." else f"{root}/"

    summary = ImportSummary()
    folders: dict[str, dict[str, Any]] = {}  # folder name -> channel
    for listing, kind in LISTINGS.items():
        if prefix + listing not in names:
            continue
        for ch in _load_json(archive, prefix + listing, list):
            if not isinstance(ch, dict) or not isinstance(ch.get("id"), str) or not ch["id"]:
                summary.skipped[f"{listing} entry without an id"] += 1
                continue
            name = ch.get("name") if isinstance(ch.get("name"), str) and ch.get("name") else ch["id"]
            folder = ch["id"] if kind == "im" else name
            folders[folder] = {"id": ch["id"], "name": name,
                               "is_private": kind != "channel", "is_im": kind in ("im", "mpim")}
    users = (_load_json(archive, prefix + "users.json", list)
             if prefix + "users.json" in names else [])
    users = [u for u in users if isinstance(u, dict) and isinstance(u.get("id"), str) and u["id"]]

    days: list[tuple[str, str]] = []  # (folder, file name)
    unknown_folders: set[str] = set()
    for name in names:
        if not name.startswith(prefix):
            continue
        parts = PurePosixPath(name[len(prefix):]).parts
        if len(parts) == 2 and DAY_FILE.match(parts[1]):
            if parts[0] in folders:
                days.append((parts[0], name))
            else:
                unknown_folders.add(parts[0])
    days.sort(key=lambda d: d[1])
    for folder in sorted(unknown_folders):
        summary.skipped[f"folder {folder}/ not listed in channels.json"] += 1
    for name in archive.irregular:
        summary.skipped[f"{name}: not a regular file (never opened)"] += 1

    at = now()
    with transaction(db):
        before = db.execute("select count(*) from messages where team_id = ?", [team_id]).fetchone()[0]
        summary.channels = upsert_channels(db, team_id, folders.values())
        summary.users = upsert_users(db, team_id, users)
        with deferred_fts(db):
            threads, deletions = _read_days(db, archive, days, folders, team_id, summary,
                                            keep_dms=keep_dms, answered_reaction=answered_reaction,
                                            at=at, progress=progress)
        # A tombstone is a parent deleted after it got replies: its replies stay, its text goes.
        for channel_id, ts in deletions:
            apply_delete(db, team_id, channel_id, ts, reason="deleted before the export was taken")
        summary.deleted = len(deletions)
        summary.threads = len(threads)
        after = db.execute("select count(*) from messages where team_id = ?", [team_id]).fetchone()[0]
        summary.new_messages = after - before
    return summary


def _read_days(db: Database, archive: _Archive, days: list[tuple[str, str]],
               folders: dict[str, dict[str, Any]], team_id: str, summary: ImportSummary, *,
               keep_dms: bool, answered_reaction: str, at: str, progress: Progress | None,
               ) -> tuple[set[tuple[str, str]], list[tuple[str, str]]]:
    """Read every day file and upsert its messages; returns (threads seen, tombstones)."""
    batch: list[tuple] = []
    threads: set[tuple[str, str]] = set()
    deletions: list[tuple[str, str]] = []
    for i, (folder, name) in enumerate(days, 1):
        channel = folders[folder]
        messages = _load_json(archive, name, list)
        summary.files += 1
        if channel["is_im"] and not keep_dms:
            summary.skipped["direct message (THREADTUNE_KEEP_DMS is off)"] += len(messages)
            continue
        for msg in messages:
            reason = skip_reason(msg)
            if reason:
                summary.skipped[reason] += 1
                continue
            if msg.get("subtype") == "tombstone":
                deletions.append((channel["id"], str(msg["ts"])))
            row = message_row(team_id, channel["id"], msg, "import",
                              answered_reaction=answered_reaction, at=at)
            batch.append(row)
            ts, thread_ts = row[2], row[3]
            if thread_ts and thread_ts != ts:
                threads.add((channel["id"], thread_ts))
        if len(batch) >= _BATCH:
            summary.messages += len(batch)
            upsert_rows(db, batch)
            batch = []
        if progress:
            progress(i, len(days), name)
    summary.messages += len(batch)
    upsert_rows(db, batch)
    return threads, deletions
