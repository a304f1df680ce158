"""A Slack status message edited in place, and the one throttle its edits share.

Used by the bot (streaming answers, review redraws, backfill and curate progress) and by the worker
(job messages). It lives here, Slack-free by import, because both sides use it and ``bot/`` may not
import ``training/``: the client is anything with ``chat_postMessage`` and ``chat_update`` (a
``slack_sdk.WebClient``, which retries 429s with its ``RateLimitErrorRetryHandler``).

``chat.update`` is Tier 3: about 50 calls a minute per workspace, for every message of the app
together. :class:`UpdateBudget` keeps the whole process under that: progress edits take a slot only
while some are left over for final ones, and a final edit (the answer itself, a job's result, a
review decision) waits for a slot, so that the last update always lands.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Below Slack's ~50 a minute, leaving room for other apps' habits and clock skew.
PER_MINUTE = 40
#: Slots kept for final edits: progress edits stop when only these are left.
RESERVE = 10
WINDOW_S = 60.0


class UpdateBudget:
    """``chat.update`` calls per workspace in a sliding minute, shared by every status message."""

    def __init__(self, per_minute: int = PER_MINUTE, reserve: int = RESERVE, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 max_wait_s: float = WINDOW_S) -> None:
        if not 0 <= reserve < per_minute:
            raise ValueError("reserve must be at least 0 and less than per_minute")
        self.per_minute, self.reserve, self.max_wait_s = per_minute, reserve, max_wait_s
        self._clock, self._sleep = clock, sleep
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def take(self, team_id: str, *, final: bool = False) -> bool:
        """Count one update of ``team_id``. A progress edit gets False when only the reserve is
        left (skip it); a final edit waits for a slot (at most ``max_wait_s``, then goes anyway:
        the client's retry handler waits out a 429) and gets True."""
        started = self._clock()
        while True:
            with self._lock:
                now = self._clock()
                hits = self._hits[team_id]
                while hits and now - hits[0] >= WINDOW_S:
                    hits.popleft()
                free = self.per_minute - len(hits)
                if free > (0 if final else self.reserve) or (final and now - started >= self.max_wait_s):
                    hits.append(now)
                    return True
                if not final:
                    return False
                wait = WINDOW_S - (now - hits[0])
            self._sleep(max(0.05, min(wait, 0.5)))

    def used(self, team_id: str) -> int:
        """Updates of ``team_id`` in the last minute."""
        with self._lock:
            now = self._clock()
            return sum(1 for t in self._hits[team_id] if now - t < WINDOW_S)


#: The budget of this process (the bot's listeners and the worker each have one).
UPDATES = UpdateBudget()


class StatusMessage:
    """One message, posted once (or adopted by ``ts``) and then edited in place.

    Progress edits closer than ``min_interval_s`` apart, or beyond the workspace's budget, are
    skipped; the final edit always goes out. Slack trouble on an edit is logged, never raised: a
    status message must not stop the work it reports on. :meth:`post` does raise, so that the
    caller can tell the user where it cannot post (``not_in_channel``).
    """

    def __init__(self, client: Any, channel: str, *, ts: str | None = None, thread_ts: str | None = None,
                 team_id: str = "", min_interval_s: float = 1.0, budget: UpdateBudget | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.channel, self.ts, self.thread_ts = client, channel, ts, thread_ts
        self.team_id, self.min_interval_s = team_id, min_interval_s
        self.budget = budget or UPDATES
        self._clock = clock
        self._last: float | None = None

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        """Post the message (raises the client's error); returns its ts."""
        kwargs: dict[str, Any] = {"channel": self.channel, "text": text}
        if blocks is not None:
            kwargs["blocks"] = blocks
        if self.thread_ts:
            kwargs["thread_ts"] = self.thread_ts
        resp = self.client.chat_postMessage(**kwargs)
        self.ts, self.channel = resp["ts"], resp.get("channel") or self.channel
        self._last = self._clock()
        return self.ts

    def mark_sent(self) -> None:
        """Count now as the last edit (the message was just posted or edited elsewhere)."""
        self._last = self._clock()

    def due(self) -> bool:
        """Whether a progress edit now would not be skipped for ``min_interval_s``."""
        return self._last is None or self._clock() - self._last >= self.min_interval_s

    def update(self, text: str, blocks: list[dict[str, Any]] | None = None, *, final: bool = False) -> bool:
        """Edit the message (post it when it has none yet); True when Slack took the edit."""
        if not final and not self.due():
            return False
        try:
            if self.ts is None:
                self.post(text, blocks)
                return True
            if not self.budget.take(self.team_id, final=final):
                return False
            self._last = self._clock()
            kwargs: dict[str, Any] = {"channel": self.channel, "ts": self.ts, "text": text}
            if blocks is not None:
                kwargs["blocks"] = blocks
            self.client.chat_update(**kwargs)
            return True
        except Exception as err:  # noqa: BLE001 (SlackApiError, SlackClientError, OSError; Slack-free here)
            error = getattr(getattr(err, "response", None), "get", lambda _k: None)("error") or err
            log.warning("status message in %s: update failed: %s", self.channel, error)
            return False
