"""Who may see a pair, from where its knowledge came from.

A pair drawn from a public channel, a document, a manual entry or an import may answer anywhere in
its workspace. A pair with a source message in a private channel or a direct message answers only
in that conversation, unless an admin marked the channel *shared*. A source in a channel whose
privacy is unknown (never listed, never seen in an event) counts as private.

A model repeats what it learned wherever it answers: so pairs from a private conversation go into a
dataset only when an admin marked that channel *trainable* (default: no).
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

# A message source in a conversation that not everyone in the workspace may read.
_RESTRICTED = ("select 1 from candidate_sources s left join channels ch on ch.team_id = s.team_id "
               "and ch.id = s.channel_id where s.candidate_id = {alias}.id and s.kind = 'message' "
               "and (ch.id is null or ch.is_private = 1 or ch.is_im = 1)")


def visible_sql(alias: str = "c") -> str:
    """A SQL condition on the candidates row ``alias`` with one parameter, the channel where the
    question was asked (None: no channel, so only pairs that may answer anywhere)."""
    return (f"not exists ({_RESTRICTED.format(alias=alias)} and coalesce(ch.shared, 0) = 0 "
            "and s.channel_id is not ?)")


def trainable_sql(alias: str = "c") -> str:
    """A SQL condition (no parameters) true when the pair ``alias`` may go into a dataset."""
    return f"not exists ({_RESTRICTED.format(alias=alias)} and coalesce(ch.trainable, 0) = 0)"


def describe(db: Database, team_id: str, candidate_id: int) -> dict[str, Any]:
    """Where a pair's knowledge came from and who may see it: ``{"scope", "channels"}``, scope one
    of ``public``, ``private`` (answers only in ``channels``), ``shared`` (private but shared by an
    admin), ``dm``; ``channels`` are the restricted conversations among its sources."""
    rows = db.execute(
        "select s.channel_id, ch.is_private, ch.is_im, coalesce(ch.shared, 0), ch.id is null "
        "from candidate_sources s left join channels ch on ch.team_id = s.team_id and ch.id = "
        "s.channel_id where s.team_id = ? and s.candidate_id = ? and s.kind = 'message'",
        [team_id, candidate_id]).fetchall()
    restricted = [r for r in rows if r[4] or r[1] or r[2]]
    if not restricted:
        return {"scope": "public", "channels": []}
    channels = sorted({r[0] for r in restricted})
    if all(r[3] for r in restricted):
        return {"scope": "shared", "channels": channels}
    return {"scope": "dm" if any(r[2] for r in restricted) else "private", "channels": channels}
