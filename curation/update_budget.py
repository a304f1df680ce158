"""The ``chat.update`` budget of each workspace, kept in the store so that every process shares it.

``chat.update`` is Tier 3: about 50 calls a minute per workspace, for every message of the app
together. The bot (streaming answers, review redraws, backfill progress) and the worker (job
messages) are separate processes that open the same store, so the budget lives there: one row per
update in ``update_budget``, counted over a sliding minute. A take is one ``BEGIN IMMEDIATE``
transaction (count, then insert), so two processes can never both take the last slot.

Progress edits take a slot only while more than the reserve is left; a final edit (an answer, a
job's result, a review decision) may use the reserve, and waits for a slot when even that is gone,
so that the last update always lands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from curation.store import connect, transaction

#: Below Slack's ~50 a minute, leaving room for clock skew and other apps of the same token.
PER_MINUTE = 40
#: Slots kept for final edits: progress edits stop when only these are left.
RESERVE = 10
WINDOW_S = 60.0


class UpdateBudget:
    """``chat.update`` calls per workspace in a sliding minute, shared through the store at ``path``
    by every process and thread that edits Slack messages."""

    def __init__(self, path: Path | str, per_minute: int = PER_MINUTE, reserve: int = RESERVE, *,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 max_wait_s: float = WINDOW_S) -> None:
        if not 0 <= reserve < per_minute:
            raise ValueError("reserve must be at least 0 and less than per_minute")
        self.path, self.per_minute, self.reserve, self.max_wait_s = Path(path), per_minute, reserve, max_wait_s
        self._clock, self._sleep = clock, sleep
        self._local = threading.local()

    def _db(self):  # noqa: ANN202 (a sqlite_utils Database)
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = connect(self.path)
        return db

    def take(self, team_id: str, *, final: bool = False) -> bool:
        """Count one update of ``team_id``. A progress edit gets False when only the reserve is
        left (skip it); a final edit waits for a slot (at most ``max_wait_s``, then goes anyway:
        the client's retry handler waits out a 429) and gets True."""
        started = self._clock()
        db = self._db()
        while True:
            with transaction(db):
                now = self._clock()
                db.execute("delete from update_budget where team_id = ? and at <= ?", [team_id, now - WINDOW_S])
                used, oldest = db.execute("select count(*), min(at) from update_budget where team_id = ?",
                                          [team_id]).fetchone()
                free = self.per_minute - used
                if free > (0 if final else self.reserve) or (final and now - started >= self.max_wait_s):
                    db.execute("insert into update_budget (team_id, at) values (?, ?)", [team_id, now])
                    return True
            if not final:
                return False
            wait = WINDOW_S - (now - oldest) if oldest is not None else 0.05
            self._sleep(max(0.05, min(wait, 0.5)))

    def used(self, team_id: str) -> int:
        """Updates of ``team_id`` in the last minute, by every process."""
        return self._db().execute("select count(*) from update_budget where team_id = ? and at > ?",
                                  [team_id, self._clock() - WINDOW_S]).fetchone()[0]
