"""What the store holds for one team, as `threadtune status --json` and `/threadtune status` show it
(read-only counts over the tables of curation/store.py)."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from curation.model_versions import live_model
from curation.schema import CANDIDATE_STATUSES


def status_counts(db: Database, team_id: str) -> dict[str, Any]:
    """Counts for `threadtune status --json`. Keys are a contract that scripts rely on."""

    def one(sql: str, *args: Any) -> int:
        return int(db.execute(sql, args).fetchone()[0])

    by_status = {s: 0 for s in CANDIDATE_STATUSES}
    for status, n in db.execute(
        "select status, count(*) from candidates where team_id = ? group by status", [team_id]
    ).fetchall():
        by_status[status] = n
    live = live_model(db, team_id)
    feedback: dict[str, dict[str, int]] = {}
    for model, up, down in db.execute(
        "select a.model, sum(f.rating > 0), sum(f.rating < 0) from feedback f "
        "join answers a on a.id = f.answer_id where a.team_id = ? group by a.model",
        [team_id],
    ).fetchall():
        feedback[model or "?"] = {"up": int(up or 0), "down": int(down or 0)}
    jobs = {
        s: n
        for s, n in db.execute(
            "select status, count(*) from jobs where team_id = ? group by status", [team_id]
        ).fetchall()
    }
    return {
        "team_id": team_id,
        "channels": one("select count(*) from channels where team_id = ?", team_id),
        "watched_channels": one(
            "select count(*) from channels where team_id = ? and watched = 1", team_id
        ),
        "users": one("select count(*) from users where team_id = ?", team_id),
        "messages": one(
            "select count(*) from messages where team_id = ? and deleted = 0", team_id
        ),
        "threads": one(
            "select count(*) from messages p where p.team_id = ? and p.deleted = 0 and "
            "(p.thread_ts is null or p.thread_ts = p.ts) and exists (select 1 from messages r "
            "where r.team_id = p.team_id and r.channel_id = p.channel_id and r.thread_ts = p.ts "
            "and r.ts != p.ts)",
            team_id,
        ),
        "documents": one("select count(*) from documents where team_id = ? and deleted = 0", team_id),
        "candidates": by_status,
        "datasets": one("select count(*) from datasets where team_id = ?", team_id),
        "models": one("select count(*) from models where team_id = ?", team_id),
        "jobs": jobs,
        "live_model": live["name"] if live else None,
        "feedback": feedback,
    }
