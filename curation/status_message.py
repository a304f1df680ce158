"""A Slack status message edited in place, within its workspace's chat.update budget.

Used by the bot (streaming answers, review redraws, backfill and curate progress) and by the worker
(job messages). It lives here, Slack-free by import, because both sides use it and ``bot/`` may not
import ``training/``: the client is anything with ``chat_postMessage`` and ``chat_update`` (a
``slack_sdk.WebClient``, which retries 429s with its ``RateLimitErrorRetryHandler``). Every edit
takes a slot of :class:`curation.update_budget.UpdateBudget`, which the bot and the worker share
through the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from curation.update_budget import UpdateBudget

log = logging.getLogger(__name__)


class StatusMessage:
    """One message, posted once (or adopted by ``ts``) and then edited in place.

    Progress edits closer than ``min_interval_s`` apart, or beyond the workspace's budget, are
    skipped; the final edit always goes out. Slack trouble on an edit is logged, never raised: a
    status message must not stop the work it reports on. :meth:`post` does raise, so that the
    caller can tell the user where it cannot post (``not_in_channel``).
    """

    def __init__(self, client: Any, channel: str, *, budget: UpdateBudget, ts: str | None = None,
                 thread_ts: str | None = None, team_id: str = "", min_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.channel, self.ts, self.thread_ts = client, channel, ts, thread_ts
        self.team_id, self.min_interval_s = team_id, min_interval_s
        self.budget = budget
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
