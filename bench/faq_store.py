"""The real course FAQ (../shared/data/datatalksclub-faq) as an approved-pair store, and the
held-out question files written for it. Shared by bench/calibrate.py, bench/retrieval.py and
bench/train.py --acceptance.

- ``tests/training/data/faq-rephrasings.jsonl``: one casual rephrasing per acceptance pair (60);
- ``tests/training/data/faq-calibration.jsonl``: 40 rephrasings of other pairs and 20 unrelated
  questions (``source_id`` null), used only to calibrate the answer thresholds;
- ``tests/training/data/ood-questions.jsonl``: 20 questions the FAQ cannot answer (eval only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAQ = ROOT.parent / "shared" / "data" / "datatalksclub-faq" / "faq-de-ml.jsonl"
DATA = ROOT / "tests" / "training" / "data"
REPHRASINGS = DATA / "faq-rephrasings.jsonl"
CALIBRATION = DATA / "faq-calibration.jsonl"
OOD = DATA / "ood-questions.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def all_pairs() -> list[dict[str, Any]]:
    """Every FAQ pair once (the file repeats a few ids)."""
    seen: set[str] = set()
    out = []
    for row in read_jsonl(FAQ):
        if row["id"] not in seen:
            seen.add(row["id"])
            out.append(row)
    return out


def acceptance_pairs(n: int = 60) -> list[dict[str, Any]]:
    """The acceptance selection: answers of 60–320 chars without images or code fences, file order."""
    return [p for p in all_pairs()
            if 60 <= len(p["answer"]) <= 320 and "![" not in p["answer"] and "```" not in p["answer"]][:n]


def load_store(db: Any, team_id: str, pairs: list[dict[str, Any]]) -> dict[str, int]:
    """Insert ``pairs`` as approved candidates of ``team_id``; returns FAQ id → candidate id."""
    from curation.store import now, transaction

    ids = {}
    with transaction(db):
        for p in pairs:
            ids[p["id"]] = db["candidates"].insert({
                "team_id": team_id, "question": p["question"], "answer": p["answer"], "status": "approved",
                "origin": "import", "dedup_key": p["id"], "created_at": now()}).last_pk
    return ids
