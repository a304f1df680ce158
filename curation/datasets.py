"""Datasets: approved pairs frozen into immutable versions, exported as JSONL, imported from JSONL.

- A version's id is the SHA-256 of its content (team, system prompt, every item with its split), so
  creating a dataset twice from the same approved pairs gives the same version back.
- The train/eval split is deterministic: a hash of the normalised question decides it. Variants
  (other phrasings of an approved pair, with the pair's answer) always go to eval.
- Stale pairs (a source was deleted or forgotten) are left out, and so are pairs from a private
  channel or a DM unless an admin marked that channel trainable (:mod:`curation.visibility`): a
  model repeats what it learned wherever it answers. A version that held text erased
  later is superseded (:mod:`curation.erasure`): its items are redacted, the files it was written
  to (:func:`record_export`) removed, and it can no longer be exported or trained on.
- Export formats: ``openai`` (``{"messages": [...]}``, which TRL's SFTTrainer loads as is),
  ``sharegpt`` (``{"conversations": [{"from", "value"}]}``) and ``alpaca``
  (``{"instruction", "input", "output"}``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from curation.candidates import add_candidate
from curation.dataset_lookup import resolve_dataset
from curation.errors import CurationError, ImportFormatError
from curation.review import approve_imported
from curation.store import audit, dumps, loads, now, transaction
from curation.visibility import trainable_sql

FORMATS = ("openai", "sharegpt", "alpaca")
SPLITS = ("train", "eval", "all")
EVAL_PERCENT = 10
MAX_IMPORT_LINE_CHARS = 100_000


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip().lower()


def split_of(question: str, eval_percent: int = EVAL_PERCENT) -> str:
    """``train`` or ``eval`` for a pair, from a hash of its normalised question (stable across runs)."""
    bucket = int(hashlib.sha256(_norm(question).encode()).hexdigest()[:8], 16) % 100
    return "eval" if bucket < eval_percent else "train"


def plan_items(pairs: list[dict[str, Any]], variants: list[dict[str, Any]],
               eval_percent: int = EVAL_PERCENT) -> list[dict[str, Any]]:
    """The items of a version (pure): pairs split by hash, variants to eval, sorted by candidate id.

    With five or more pairs and none hashed to eval, the pair with the smallest hash goes to eval,
    so that there is always something to evaluate on.
    """
    items = [{"candidate_id": p["id"], "question": p["question"], "answer": p["answer"],
              "kind": "pair", "split": split_of(p["question"], eval_percent)} for p in pairs]
    if len(items) >= 5 and not any(i["split"] == "eval" for i in items):
        smallest = min(items, key=lambda i: hashlib.sha256(_norm(i["question"]).encode()).hexdigest())
        smallest["split"] = "eval"
    items += [{"candidate_id": v["id"], "question": v["question"], "answer": v["answer"],
               "kind": "variant", "split": "eval"} for v in variants]
    return sorted(items, key=lambda i: (i["kind"] != "pair", i["candidate_id"]))


def content_hash(team_id: str, system_prompt: str | None, items: list[dict[str, Any]]) -> str:
    """The version id: SHA-256 over the team, the system prompt and the items."""
    payload = json.dumps(
        [team_id, system_prompt or "",
         [[i["split"], i["kind"], i["question"], i["answer"]] for i in items]],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def create_dataset(db: Database, team_id: str, *, created_by: str = "cli",
                   system_prompt: str | None = None, eval_percent: int = EVAL_PERCENT,
                   via: str = "cli") -> dict[str, Any]:
    """Freeze the approved, non-stale pairs (and their variants) into a new immutable version.

    Returns the ``datasets`` row plus ``created`` (False when the same content already exists).
    Raises CurationError when there is no approved pair.
    """
    with transaction(db):
        pairs = list(db.query(
            "select id, question, answer from candidates c where team_id = ? and status = 'approved' "
            f"and stale = 0 and {trainable_sql('c')} order by id", [team_id]))
        if not pairs:
            raise CurationError(f"team {team_id} has no approved pairs; approve some with "
                                "`threadtune review approve ID` first")
        variants = list(db.query(
            "select v.id, v.question, p.answer from candidates v join candidates p on p.id = v.variant_of "
            "where v.team_id = ? and v.status = 'variant' and v.stale = 0 and p.status = 'approved' "
            f"and p.stale = 0 and {trainable_sql('v')} and {trainable_sql('p')} order by v.id", [team_id]))
        items = plan_items(pairs, variants, eval_percent)
        digest = content_hash(team_id, system_prompt, items)
        existing = list(db.query("select * from datasets where id = ?", [digest]))
        if existing:
            return {**existing[0], "meta": loads(existing[0]["meta"], {}), "created": False}
        version = db.execute("select coalesce(max(version), 0) + 1 from datasets where team_id = ?",
                             [team_id]).fetchone()[0]
        n_train = sum(i["split"] == "train" for i in items)
        meta = {"eval_percent": eval_percent, "pairs": len(pairs), "variants": len(variants)}
        row = {"id": digest, "team_id": team_id, "version": version, "name": f"v{version}",
               "system_prompt": system_prompt, "n_train": n_train, "n_eval": len(items) - n_train,
               "meta": dumps(meta), "created_by": created_by, "created_at": now()}
        db["datasets"].insert(row)
        db["dataset_items"].insert_all({**i, "dataset_id": digest, "team_id": team_id} for i in items)
        audit(db, team_id, created_by, "dataset.create", f"dataset:{row['name']}",
              detail={"id": digest, "n_train": n_train, "n_eval": row["n_eval"]}, via=via)
    return {**row, "meta": meta, "created": True}


def list_datasets(db: Database, team_id: str) -> list[dict[str, Any]]:
    """The team's versions, oldest first."""
    return [{**r, "meta": loads(r["meta"], {})} for r in db.query(
        "select * from datasets where team_id = ? order by version", [team_id])]


# --- export ----------------------------------------------------------------------------------


def example(question: str, answer: str, fmt: str, system_prompt: str | None = None) -> dict[str, Any]:
    """One training example in ``fmt``, with the system prompt when there is one."""
    if fmt == "openai":
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return {"messages": [*messages, {"role": "user", "content": question},
                             {"role": "assistant", "content": answer}]}
    if fmt == "sharegpt":
        turns = [{"from": "system", "value": system_prompt}] if system_prompt else []
        return {"conversations": [*turns, {"from": "human", "value": question},
                                  {"from": "gpt", "value": answer}]}
    if fmt == "alpaca":
        row = {"instruction": question, "input": "", "output": answer}
        return {**row, "system": system_prompt} if system_prompt else row
    raise CurationError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def export_rows(db: Database, team_id: str, spec: str | int, fmt: str = "openai",
                split: str = "train", system_prompt: str | None = None) -> list[dict[str, Any]]:
    """The examples of a version in ``fmt``; ``system_prompt`` overrides the one frozen with it."""
    if fmt not in FORMATS:
        raise CurationError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if split not in SPLITS:
        raise CurationError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    ds = resolve_dataset(db, team_id, spec)
    refuse_superseded(ds)
    prompt = system_prompt if system_prompt is not None else ds["system_prompt"]
    where = "" if split == "all" else "and split = ?"
    args = [ds["id"], team_id] + ([] if split == "all" else [split])
    return [example(r["question"], r["answer"], fmt, prompt) for r in db.query(
        f"select question, answer from dataset_items where dataset_id = ? and team_id = ? {where} "
        "order by id", args)]


def refuse_superseded(ds: dict[str, Any]) -> None:
    """Raise CurationError for a version that held erased text (its items are redacted)."""
    if ds.get("superseded_at"):
        raise CurationError(
            f"dataset {ds['name']} was superseded on {ds['superseded_at']} ({ds['superseded_reason']}): "
            "it held text that was erased since; create a new version with `threadtune dataset create`")


def record_export(db: Database, team_id: str, dataset_id: str, path: Path | str) -> None:
    """Remember that a version was written to ``path``: if the version is superseded, erasure
    removes the file (:func:`curation.erasure.supersede_datasets`)."""
    with transaction(db):
        db["dataset_files"].insert({"team_id": team_id, "dataset_id": dataset_id,
                                    "path": str(Path(path).resolve()), "created_at": now()})


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """Write rows as JSONL atomically (a temp file, then rename); returns the row count."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    n = 0
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CurationError(f"cannot write {path}: {err.strerror or err}") from None
    return n


# --- import ----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What ``import_jsonl`` did; ``errors`` are ``(line number, message)``."""

    added: int = 0
    approved: int = 0
    duplicates: int = 0
    variants: int = 0
    auto_rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


def pair_from_row(row: Any) -> tuple[str, str]:
    """``(question, answer)`` from a ``{question, answer}``, ``messages``, ShareGPT or Alpaca row."""
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if "question" in row or "answer" in row:
        q, a = row.get("question"), row.get("answer")
    elif "messages" in row:
        msgs = row["messages"]
        if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
            raise ValueError("'messages' must be a list of {role, content} objects")
        users = [m.get("content") for m in msgs if m.get("role") == "user"]
        assistants = [m.get("content") for m in msgs if m.get("role") == "assistant"]
        q, a = (users[0] if users else None), (assistants[-1] if assistants else None)
    elif "conversations" in row:
        turns = row["conversations"]
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise ValueError("'conversations' must be a list of {from, value} objects")
        humans = [t.get("value") for t in turns if t.get("from") in ("human", "user")]
        gpts = [t.get("value") for t in turns if t.get("from") in ("gpt", "assistant")]
        q, a = (humans[0] if humans else None), (gpts[-1] if gpts else None)
    elif "instruction" in row:
        q = row.get("instruction")
        if row.get("input"):
            q = f"{q}\n\n{row['input']}"
        a = row.get("output")
    else:
        raise ValueError("needs 'question' and 'answer', or 'messages', 'conversations' or 'instruction'")
    if not isinstance(q, str) or not q.strip():
        raise ValueError("the question is missing or empty")
    if not isinstance(a, str) or not a.strip():
        raise ValueError("the answer is missing or empty")
    return q.strip(), a.strip()


def _lines(fh: Any, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """``(line number, bytes, size)`` of each line of a binary file; the bytes are None for a line
    over ``limit``, which is skipped in chunks and never held whole. A UTF-8 BOM is dropped."""
    lineno = 0
    while True:
        raw = fh.readline(limit + 1)
        if not raw:
            return
        lineno += 1
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if len(raw) > limit and not raw.endswith(b"\n"):
            size = len(raw)
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(1 << 20)
                size += len(raw)
            yield lineno, None, size
            continue
        yield lineno, raw, len(raw)


def import_jsonl(db: Database, team_id: str, path: Path, *, approved: bool = False,
                 actor: str = "cli", via: str = "cli", operator: str | None = None,
                 progress: Callable[[int], None] | None = None) -> ImportReport:
    """Bring pairs from a JSONL file in as candidates (``origin='import'``).

    Bad lines are reported with their line numbers and the good ones are kept. With ``approved``,
    each new pair goes straight to approved, recorded per pair in the review log and once in the
    audit log. Importing the same file twice adds nothing the second time.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    report = ImportReport()
    with path.open("rb") as fh:
        for lineno, raw, size in _lines(fh, MAX_IMPORT_LINE_CHARS):
            if progress:
                progress(lineno)
            if raw is None:
                report.errors.append((lineno, f"line is {size:,} bytes (limit {MAX_IMPORT_LINE_CHARS:,})"))
                continue
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
                question, answer = pair_from_row(row)
            except UnicodeDecodeError:
                report.errors.append((lineno, "not UTF-8 text"))
                continue
            except json.JSONDecodeError as err:
                report.errors.append((lineno, f"not valid JSON ({err.msg} at column {err.colno})"))
                continue
            except ValueError as err:
                report.errors.append((lineno, str(err)))
                continue
            with transaction(db):
                added = add_candidate(db, team_id, question, answer, origin="import",
                                      created_by=actor, prompt_version="import")
                if not added.created:
                    report.duplicates += 1
                    continue
                report.added += 1
                report.ids.append(added.id)
                if added.status == "variant":
                    report.variants += 1
                elif added.status == "auto_rejected":
                    report.auto_rejected += 1
                    report.errors.append((lineno, f"auto-rejected: {added.reason}"))
                elif approved:
                    approve_imported(db, team_id, added.id, actor, via=via, operator=operator)
                    report.approved += 1
    if approved:
        with transaction(db):
            audit(db, team_id, actor, "dataset.import_approved", str(path.name),
                  detail={"approved": report.approved, "added": report.added,
                          "errors": len(report.errors),
                          **({"operator": f"operator {operator} acting as {actor}"}
                             if operator and operator != actor else {})}, via=via)
    return report
