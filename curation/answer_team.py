"""Which workspace a question from the terminal goes to: one data dir can hold several, and a user
who ran the demo should not be answered from an empty default workspace without being told."""

from __future__ import annotations

from typing import Any

from curation.errors import CurationError


def teams_with_answers(db: Any) -> list[str]:
    """Team ids that have approved pairs or trained models in this store, sorted."""
    rows = db.execute(
        "select team_id from candidates where status = 'approved' union "
        "select team_id from models order by 1").fetchall()
    return [r[0] for r in rows if r[0]]


def pick_team(db: Any, configured: str, *, explicit: bool) -> str:
    """``configured`` when it was set explicitly (``--team``, THREADTUNE_TEAM_ID) or has answers;
    else the only workspace of the store; with several, a CurationError naming them."""
    if explicit:
        return configured
    teams = teams_with_answers(db)
    if configured in teams or not teams:
        return configured
    if len(teams) == 1:
        return teams[0]
    raise CurationError(f"this data dir holds {len(teams)} workspaces ({', '.join(teams)}) and "
                        f"{configured} has no approved answers; pick one with --team "
                        f"{teams[0]} (or set THREADTUNE_TEAM_ID)")
