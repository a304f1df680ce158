"""Erasure that reaches the bytes: what is removed when a message is deleted or a person forgotten.

A deleted message's text goes from ``messages`` (:mod:`curation.deletion`); this module removes
every copy made from it:

- candidates drawn from it are marked stale *and* redacted (question, answer, evidence, scores and
  the near-duplicate key), and so are the snapshots of their review history;
- a frozen dataset version that holds one of them is marked superseded: its items are redacted,
  the files it was written to are removed, and the audit log says so;
- :func:`erase_residue` then merges the full-text indexes (FTS5 keeps old terms in index segments
  until they are merged) and checkpoints the WAL into the file, truncating it.

``PRAGMA secure_delete`` (set by :func:`curation.store.connect`) makes SQLite overwrite freed
content with zeros, so after :func:`erase_residue` the text is in no byte of the store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from sqlite_utils import Database

from curation.errors import NotFound
from curation.store import audit, joined_transaction, now, transaction

log = logging.getLogger(__name__)

#: The full-text indexes whose segments keep removed terms until merged.
FTS_TABLES = ("messages_fts", "candidates_fts")


def mark_stale(db: Database, team_id: str, candidate_ids: list[int], reason: str, *,
               actor: str = "system", via: str = "system") -> None:
    """Mark candidates stale (they leave the next dataset version), one ``reviews`` row each."""
    at = now()
    with joined_transaction(db):
        for cid in candidate_ids:
            db.execute("update candidates set stale = 1, stale_reason = ?, updated_at = ? where id = ?",
                       [reason, at, cid])
            db["reviews"].insert({"team_id": team_id, "candidate_id": cid, "actor": actor,
                                  "action": "stale", "reason": reason, "via": via, "at": at})


def redact_candidates(db: Database, team_id: str, candidate_ids: Iterable[int], reason: str, *,
                      actor: str = "system", via: str = "system",
                      status: str | None = None) -> list[int]:
    """Remove the text of candidates and of every copy of it in the store; returns their ids.

    They are marked stale (with a ``reviews`` row) when they were not already; ``status`` also
    sets their status (a forgotten person's own pairs are ``rejected``). Review snapshots are
    blanked, and dataset versions holding them are superseded (:func:`supersede_datasets`).
    """
    ids = sorted({int(i) for i in candidate_ids})
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    with joined_transaction(db):
        fresh = [r[0] for r in db.execute(
            f"select id from candidates where team_id = ? and id in ({marks}) and stale = 0",
            [team_id, *ids]).fetchall()]
        mark_stale(db, team_id, fresh, reason, actor=actor, via=via)
        db.execute(
            f"update candidates set question = '', answer = '', evidence = NULL, scores = '{{}}', "
            f"question_key = NULL, reject_reason = CASE WHEN ? IS NULL THEN reject_reason ELSE ? END, "
            f"status = coalesce(?, status), updated_at = ? where team_id = ? and id in ({marks})",
            [status, reason, status, now(), team_id, *ids])
        db.execute(f"update reviews set before = NULL, after = NULL where team_id = ? and "
                   f"candidate_id in ({marks})", [team_id, *ids])
        supersede_datasets(db, team_id, ids, reason, actor=actor, via=via)
    return ids


def supersede_datasets(db: Database, team_id: str, candidate_ids: list[int], reason: str, *,
                       actor: str = "system", via: str = "system") -> list[str]:
    """Supersede every version holding one of ``candidate_ids``: redact those items, remove the
    files the version was written to, and audit it. Returns the version names."""
    if not candidate_ids:
        return []
    marks = ",".join("?" * len(candidate_ids))
    names = []
    with joined_transaction(db):
        rows = db.execute(
            f"select distinct d.id, d.name from dataset_items i join datasets d on d.id = i.dataset_id "
            f"where i.team_id = ? and i.candidate_id in ({marks}) and i.question != '' order by d.version",
            [team_id, *candidate_ids]).fetchall()
        for dataset_id, name in rows:
            redacted = db.execute(
                f"update dataset_items set question = '', answer = '' where dataset_id = ? and "
                f"candidate_id in ({marks})", [dataset_id, *candidate_ids]).rowcount
            db.execute("update datasets set superseded_at = coalesce(superseded_at, ?), "
                       "superseded_reason = coalesce(superseded_reason, ?) where id = ?",
                       [now(), reason, dataset_id])
            removed = _remove_files(db, dataset_id)
            audit(db, team_id, actor, "dataset.supersede", f"dataset:{name}", via=via, detail={
                "id": dataset_id, "reason": reason, "items_redacted": redacted,
                "files_removed": removed})
            names.append(name)
    return names


def _remove_files(db: Database, dataset_id: str) -> list[str]:
    removed = []
    for file_id, path in db.execute("select id, path from dataset_files where dataset_id = ?",
                                    [dataset_id]).fetchall():
        try:
            Path(path).unlink(missing_ok=True)
            removed.append(path)
        except OSError as err:  # recorded in the audit detail by its absence; the rest goes on
            log.warning("could not remove %s of a superseded dataset: %s", path, err)
            continue
        db.execute("delete from dataset_files where id = ?", [file_id])
    return removed


def erase_document(db: Database, team_id: str, document_id: int, *, actor: str,
                   via: str = "cli") -> list[int]:
    """Remove a document's text and redact the pairs drawn from it; returns their ids."""
    with transaction(db):
        row = db.execute("select id from documents where team_id = ? and id = ?",
                         [team_id, document_id]).fetchone()
        if row is None:
            raise NotFound(f"document {document_id} does not exist in team {team_id}; "
                           "see `threadtune status`")
        db.execute("update documents set text = NULL, deleted = 1 where id = ?", [document_id])
        ids = [r[0] for r in db.execute(
            "select distinct candidate_id from candidate_sources where team_id = ? and kind = "
            "'document' and document_id = ?", [team_id, document_id]).fetchall()]
        reason = f"source document {document_id} removed"
        redact_candidates(db, team_id, ids, reason, actor=actor, via=via)
        audit(db, team_id, actor, "document.remove", f"document:{document_id}",
              detail={"redacted_candidates": ids}, via=via)
    return ids


def erase_residue(db: Database) -> bool:
    """After text was removed: merge the FTS5 segments so that no removed term survives in the
    index, then checkpoint the WAL into the file and truncate it.

    Call it after the erasing transaction committed. Returns False when another connection's open
    read kept part of the WAL (the next erasure's checkpoint takes it).
    """
    if db.conn.in_transaction:
        raise RuntimeError("erase_residue runs after the erasing transaction has committed")
    with transaction(db):
        for table in FTS_TABLES:
            db.execute(f"insert into {table} ({table}) values ('optimize')")
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0
