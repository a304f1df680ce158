"""Documents as curation sources: ``threadtune add-doc FILE`` (Markdown or plain text)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from curation.errors import ImportFormatError
from curation.store import audit, now, transaction

MAX_DOC_BYTES = 5_000_000
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown", ".mkd")
TEXT_SUFFIXES = (".txt", ".text", ".rst", "")


def add_document(db: Database, team_id: str, path: Path | str, *, actor: str = "cli",
                 title: str | None = None) -> dict[str, Any]:
    """Store a Markdown or plain-text file for the next curate run.

    Returns the ``documents`` row plus ``created`` (False when the same text was added before).
    Raises ImportFormatError for a missing, binary, non-UTF-8, empty or oversized file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in MARKDOWN_SUFFIXES + TEXT_SUFFIXES:
        raise ImportFormatError(f"{path}: {suffix} files are not supported; give a Markdown (.md) or "
                                "plain-text (.txt) file")
    size = path.stat().st_size
    if size > MAX_DOC_BYTES:
        raise ImportFormatError(f"{path}: {size:,} bytes is over the {MAX_DOC_BYTES:,}-byte limit; "
                                "split it into smaller files")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise ImportFormatError(f"{path}: looks binary (NUL bytes); give a Markdown or text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ImportFormatError(f"{path}: not UTF-8 text (byte {err.start}); convert it with "
                                "`iconv -t utf-8`") from None
    if not text.strip():
        raise ImportFormatError(f"{path}: the file is empty")
    digest = hashlib.sha256(text.encode()).hexdigest()
    with transaction(db):
        existing = list(db.query("select * from documents where team_id = ? and sha256 = ?",
                                 [team_id, digest]))
        if existing:
            if existing[0]["deleted"]:  # removed before (its text erased): added again
                db["documents"].update(existing[0]["id"], {"deleted": 0, "text": text})
            return {**existing[0], "text": text, "deleted": 0, "created": False}
        row = {"team_id": team_id, "title": title or path.stem, "path": str(path.resolve()),
               "kind": "markdown" if suffix in MARKDOWN_SUFFIXES else "text", "text": text,
               "sha256": digest, "deleted": 0, "created_at": now()}
        row["id"] = db["documents"].insert(row).last_pk
        audit(db, team_id, actor, "document.add", f"document:{row['id']}",
              detail={"path": str(path), "chars": len(text)}, via="cli")
    return {**row, "created": True}
