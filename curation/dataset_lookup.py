"""Which dataset version a user means: ``latest``, ``v3``, ``3``, the content hash, or a prefix of it.

The one resolver for the CLI (`threadtune dataset export`, `threadtune train`), the bot
(`/threadtune train`) and the worker, so that a name means the same version everywhere.
"""

from __future__ import annotations

from typing import Any

from curation.errors import NotFound, StoreError
from curation.store import loads

#: The shortest hash prefix accepted: shorter ones collide with version numbers and each other.
MIN_PREFIX = 6


def resolve_dataset(db: Any, team_id: str, spec: str | int | None) -> dict[str, Any]:
    """The ``datasets`` row (``meta`` decoded) that ``spec`` names in ``team_id``.

    None, ``""`` and ``latest`` mean the newest version. A hash prefix must be at least
    :data:`MIN_PREFIX` characters and match one version only. Raises NotFound naming the known
    versions (or how to make the first one).
    """
    if not db["datasets"].exists():
        raise StoreError("the store has no datasets table; run `threadtune init`")
    text = "latest" if spec is None or str(spec).strip() == "" else str(spec).strip()
    if text.lower() == "latest":
        rows = list(db.query("select * from datasets where team_id = ? order by version desc limit 1",
                             [team_id]))
    else:
        digits = text[1:] if text[:1] in "vV" else text
        rows = list(db.query(
            "select * from datasets where team_id = ? and (id = ? or name = ? or version = ?)",
            [team_id, text, text, int(digits) if digits.isdigit() else -1]))
        if not rows and len(text) >= MIN_PREFIX:
            rows = list(db.query("select * from datasets where team_id = ? and id like ? order by version",
                                 [team_id, text.lower().replace("%", "").replace("_", "") + "%"]))
            if len(rows) > 1:
                names = ", ".join(r["name"] for r in rows)
                raise NotFound(f"dataset {text!r} is ambiguous in team {team_id}: it begins the hashes "
                               f"of {names}; give more characters or the version name")
    if not rows:
        known = [r[0] for r in db.execute("select name from datasets where team_id = ? order by version",
                                          [team_id]).fetchall()]
        hint = f"known versions: {', '.join(known)}" if known else (
            "there are none yet; approve pairs and run `threadtune dataset create`")
        raise NotFound(f"dataset {text!r} not found for team {team_id} ({hint})")
    return {**rows[0], "meta": loads(rows[0]["meta"], {})}
