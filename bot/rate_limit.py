"""One rate limiter for the bot: at most ``limit`` events per ``window_s`` per key.

Questions per user (``THREADTUNE_ANSWER_RATE_PER_MINUTE``) ask :meth:`RateLimiter.allow` and tell the
user how long to wait; review posts, about one a second per channel as Slack allows, wait their turn
with :meth:`RateLimiter.wait`.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable


class RateLimiter:
    """A sliding window per key."""

    def __init__(self, limit: int, window_s: float = 60.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if limit < 1 or window_s < 0:
            raise ValueError("limit must be at least 1 and window_s not negative")
        self.limit, self.window_s = limit, window_s
        self._clock, self._sleep = clock, sleep
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str, at: float | None = None) -> float:
        """0 when allowed (and counted); otherwise the seconds until the next slot frees up."""
        at = self._clock() if at is None else at
        with self._lock:
            hits = self._hits[key]
            while hits and at - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.01, self.window_s - (at - hits[0]))
            hits.append(at)
            return 0.0

    def wait(self, key: str) -> None:
        """Block until an event of ``key`` is allowed, and count it."""
        while (delay := self.allow(key)) > 0:
            self._sleep(delay)


def pacer(interval_s: float) -> RateLimiter:
    """One event per ``interval_s`` per key (a channel's posts)."""
    return RateLimiter(1, interval_s)
