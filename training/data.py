"""Dataset versions from the store, as TRL ``messages`` rows.

Reads the ``datasets`` and ``dataset_items`` tables that curation freezes. A version is named as
``curation.dataset_lookup.resolve_dataset`` reads it: its content hash or a prefix of it, its name
(``v3``), its number (``3``) or ``latest``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curation.dataset_lookup import resolve_dataset
from training.errors import DatasetError


def to_messages(question: str, answer: str, system_prompt: str | None) -> dict[str, list[dict[str, str]]]:
    """One pair as a TRL conversational row."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def load_dataset_messages(db: Any, team_id: str, version: str | int | None,
                          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train_rows, eval_rows)`` in TRL's ``messages`` format for a dataset version.

    Each row is ``{"messages": [system?, user, assistant]}``; eval rows hold the held-out pairs and
    the variant phrasings. Raises NotFound when the version is unknown, DatasetError when its train split is empty.
    """
    ds = resolve_dataset(db, team_id, version)
    items = list(db.query(
        "select split, question, answer from dataset_items where dataset_id = ? and team_id = ? "
        "order by id", [ds["id"], team_id]))
    train = [to_messages(i["question"], i["answer"], ds["system_prompt"])
             for i in items if i["split"] == "train"]
    evals = [to_messages(i["question"], i["answer"], ds["system_prompt"])
             for i in items if i["split"] == "eval"]
    if not train:
        raise DatasetError(
            f"dataset {ds['name'] or ds['id']} has no train rows; approve more pairs and create a "
            "new version with `threadtune dataset create`")
    return train, evals


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def pair_of(row: dict[str, Any]) -> tuple[str, str]:
    """``(question, reference answer)`` of a messages row: the last user turn and the answer."""
    user = [m["content"] for m in row["messages"] if m["role"] == "user"]
    assistant = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
    return user[-1], assistant[-1]
