"""Reads of the model registry (the ``models`` table): the live model, one version, all versions,
and the eval score that gates promotion.

Shared ground: the bot (answers, `/threadtune models|eval|promote`), the server's reload watch and
the training registry (which alone writes the table, in training/registry.py) all read it here.
"""

from __future__ import annotations

from typing import Any

from curation.errors import NotFound
from curation.store import loads

#: The metric that gates promotion, read from the "bot" system of an eval report ("tuned" in old ones).
GATE_METRIC = "token_f1"


def _decode(row: Any) -> dict[str, Any]:
    row = dict(row)
    row["config"] = loads(row.get("config"), {})
    row["metrics"] = loads(row.get("metrics"), {})
    return row


def live_model(db: Any, team_id: str) -> dict[str, Any] | None:
    """The live model row of a team (base_model, adapter_path, name …), or None: serve the base.

    At most one row is live; should two ever be (a store written by hand), the one promoted last wins.
    """
    rows = db.query("select * from models where team_id = ? and status = 'live' "
                    "order by promoted_at desc limit 1", [team_id])
    return next((_decode(r) for r in rows), None)


def list_models(db: Any, team_id: str) -> list[dict[str, Any]]:
    """All versions of a team, newest first."""
    return [_decode(r) for r in db.query("select * from models where team_id = ? order by version desc",
                                         [team_id])]


def get_model(db: Any, team_id: str, spec: str | int) -> dict[str, Any]:
    """A model by name (``v3``), number (``3``), ``latest`` or ``live``; NotFound names the known ones."""
    text = str(spec).strip()
    if text.lower() == "live":
        row = live_model(db, team_id)
    else:
        if text.lower() == "latest":
            rows = db.query("select * from models where team_id = ? order by version desc limit 1", [team_id])
        else:
            digits = text[1:] if text[:1] in "vV" else text
            rows = db.query("select * from models where team_id = ? and version = ?",
                            [team_id, int(digits) if digits.isdigit() else -1])
        row = next((_decode(r) for r in rows), None)
    if row is None:
        known = [r[0] for r in db.execute("select name from models where team_id = ? order by version",
                                          [team_id]).fetchall()]
        hint = f"known: {', '.join(known)}" if known else "none trained yet; run `threadtune train`"
        raise NotFound(f"model {text!r} not found for team {team_id} ({hint})")
    return row


def gate_score(model: dict[str, Any], split: str, system: str | None = None) -> float | None:
    """The gate metric of ``model`` on eval ``split``, if it was evaluated there. The default system
    is ``bot`` (what users get), or ``tuned`` for evals made before the bot system existed; ``base``
    means ``bot-base`` alongside ``bot``."""
    systems = (model["metrics"].get("evals", {}).get(split) or {}).get("systems", {})
    bot = "bot" in systems
    system = system or ("bot" if bot else "tuned")
    if system == "base" and bot:
        system = "bot-base"
    value = (systems.get(system) or {}).get(GATE_METRIC)
    return float(value) if value is not None else None


def latest_score(model: dict[str, Any]) -> str | None:
    """The gate score of the model's most recent eval, as promotion reads it, with its system and
    split: ``0.412 bot on dataset:3f9a0c1e7b2d``. None when no eval holds one. What `threadtune
    models list` and `/threadtune models` show."""
    evals = model["metrics"].get("evals", {})
    for split, entry in sorted(evals.items(), key=lambda kv: str(kv[1].get("at") or ""), reverse=True):
        value = gate_score(model, split)
        if value is not None:
            system = "bot" if "bot" in (entry.get("systems") or {}) else "tuned"
            kind, _, key = split.partition(":")
            return f"{value:.3f} {system} on {kind}:{key[:12]}"
    return None
