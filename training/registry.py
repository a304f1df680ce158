"""The model registry: the ``models`` table, with lineage and eval-gated promotion.

Each trained adapter gets a version (v1, v2 …) with its base model, adapter path, dataset, config,
metrics and a status: ``candidate``, ``live`` (at most one per team) or ``retired``.

This module writes the table; everyone reads it through ``curation/model_versions.py`` (the live
model, one version, the list, the gate score), which the bot shares. :func:`promote` and
:func:`rollback` change it in one transaction, write an audit row, and then call the optional
``on_change(model_row)`` hook (the CLI passes serving's reload, the bot leaves it to the server's
own watch of the store).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from curation.model_versions import GATE_METRIC, gate_score, get_model, live_model
from curation.store import audit, dumps, now, transaction
from training.errors import RegistryError


def _stamp() -> str:
    """Promotion time to the microsecond: rollback orders promotions by it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def register_model(db: Any, team_id: str, *, base_model: str, adapter_path: str, dataset_id: str,
                   job_id: int | None = None, config: dict[str, Any] | None = None,
                   metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add a trained adapter as the next version (status candidate); returns its row."""
    with transaction(db):
        version = 1 + (db.execute("select coalesce(max(version), 0) from models where team_id = ?",
                                  [team_id]).fetchone()[0])
        live = db.execute("select name from models where team_id = ? and status = 'live'",
                          [team_id]).fetchone()
        db["models"].insert({
            "team_id": team_id, "version": version, "name": f"v{version}", "base_model": base_model,
            "adapter_path": adapter_path, "dataset_id": dataset_id, "job_id": job_id,
            "parent": live[0] if live else None, "config": dumps(config or {}),
            "metrics": dumps(metrics or {}), "status": "candidate", "created_at": now(),
        })
    return get_model(db, team_id, f"v{version}")


def record_eval(db: Any, team_id: str, name: str, report: dict[str, Any]) -> None:
    """Store an eval report's systems under its split key in the model's metrics."""
    model = get_model(db, team_id, name)
    metrics = model["metrics"]
    metrics.setdefault("evals", {})[report["split"]] = {
        "systems": report["systems"], "n": report.get("n"), "at": now()}
    with transaction(db):
        db.execute("update models set metrics = ? where id = ?", [dumps(metrics), model["id"]])


def promotion_check(candidate: dict[str, Any], live: dict[str, Any] | None) -> tuple[bool, str]:
    """Whether ``candidate`` may replace ``live``, and why (pure; used by promote and the bot).

    With a live model, both must have been evaluated on a shared eval split, and the candidate's
    bot score (tuned, when either eval predates the bot system) must not be lower. Without one, the
    candidate must not score below the base model (bot-base alongside bot).
    """
    evals = candidate["metrics"].get("evals", {})
    if not evals:
        return False, (f"{candidate['name']} has no eval results; run `threadtune eval "
                       f"{candidate['name']}` first (or promote with --force)")
    if live is None:
        for split in evals:
            tuned, base = gate_score(candidate, split), gate_score(candidate, split, "base")
            if tuned is not None and base is not None and tuned < base:
                return False, (f"{candidate['name']} scores {GATE_METRIC} {tuned:.3f} on {split}, "
                               f"below the base model's {base:.3f}; use --force to promote anyway")
        return True, f"{candidate['name']} is the first live model"
    shared = [s for s in evals if gate_score(live, s) is not None and gate_score(candidate, s) is not None]
    if not shared:
        return False, (f"{candidate['name']} and the live {live['name']} were not evaluated on the same "
                       f"eval split; run `threadtune eval {live['name']} --dataset "
                       f"{next(iter(evals))}` first (or promote with --force)")
    split = shared[0]
    # the same system on both sides: bot when both evals have it, else tuned (an older eval)
    both_bot = all("bot" in (m["metrics"]["evals"][split].get("systems") or {}) for m in (candidate, live))
    system = "bot" if both_bot else "tuned"
    new, old = gate_score(candidate, split, system), gate_score(live, split, system)
    if new is None or old is None:
        return False, (f"{candidate['name']} and the live {live['name']} have no {system} score to compare on "
                       f"{split}; re-run `threadtune eval` on both (or promote with --force)")
    if new < old:
        return False, (f"{candidate['name']} scores {GATE_METRIC} {new:.3f} on {split}, below the live "
                       f"{live['name']}'s {old:.3f}; promotion refused (use --force to override)")
    return True, f"{candidate['name']} {GATE_METRIC} {new:.3f} ≥ live {live['name']} {old:.3f} on {split}"


def promote(db: Any, team_id: str, name: str, *, actor: str = "cli", force: bool = False,
            via: str = "cli", on_change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Make model ``name`` live (the previous live one is retired); eval-gated unless ``force``.

    A refusal raises RegistryError and is recorded in the audit log as ``model.promote_refused``.
    """
    candidate = get_model(db, team_id, name)
    live = live_model(db, team_id)
    if live is not None and live["id"] == candidate["id"]:
        raise RegistryError(f"{candidate['name']} is already live")
    ok, why = promotion_check(candidate, live)
    if not ok and not force:
        with transaction(db):
            audit(db, team_id, actor, "model.promote_refused", candidate["name"], detail={"reason": why}, via=via)
        raise RegistryError(why)
    with transaction(db):
        db.execute("update models set status = 'retired' where team_id = ? and status = 'live'", [team_id])
        db.execute("update models set status = 'live', promoted_at = ? where id = ?",
                   [_stamp(), candidate["id"]])
        audit(db, team_id, actor, "model.promote", candidate["name"], via=via,
              detail={"previous": live["name"] if live else None, "forced": force and not ok, "check": why})
    promoted = get_model(db, team_id, candidate["name"])
    if on_change is not None:
        on_change(promoted)
    return promoted


def rollback(db: Any, team_id: str, *, actor: str = "cli", via: str = "cli",
             on_change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any] | None:
    """Retire the live model and make the previously live one live again (None: back to the base).

    The previous one is the retired version promoted most recently before the current one, so
    repeated rollbacks walk back through the promotion history to the base model.
    """
    live = live_model(db, team_id)
    if live is None:
        raise RegistryError("no live model to roll back; the base model is already serving")
    previous = next(iter(db.query(
        "select name from models where team_id = ? and status = 'retired' and promoted_at < ? "
        "order by promoted_at desc limit 1", [team_id, live["promoted_at"] or ""])), None)
    with transaction(db):
        db.execute("update models set status = 'retired' where id = ?", [live["id"]])
        if previous is not None:
            db.execute("update models set status = 'live' where team_id = ? and name = ?",
                       [team_id, previous["name"]])
        audit(db, team_id, actor, "model.rollback", live["name"], via=via,
              detail={"to": previous["name"] if previous else "base"})
    current = live_model(db, team_id)
    if on_change is not None:
        on_change(current or {"name": "base", "adapter_path": None, "base_model": live["base_model"]})
    return current
