"""Backfill: a channel's history (``conversations.history``) and each of its threads
(``conversations.replies``), following cursors. 429s are retried by the client's
``RateLimitErrorRetryHandler`` after Retry-After (see ``bot.app.web_client``).

A rerun is idempotent (messages are upserted by key). A message the store holds but Slack no longer
returns for the window was deleted while the bot was away: its text is removed like a live delete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.users import resolve_users
from curation.deletion import apply_delete
from curation.errors import CurationError
from curation.messages import upsert_message
from curation.rows import skip_reason
from curation.store import transaction

PAGE_SIZE = 200


@dataclass
class BackfillResult:
    """Counts of one channel's backfill."""

    channel_id: str
    messages: int = 0
    threads: int = 0
    skipped: int = 0
    deleted: int = 0
    pages: int = 0
    users: set[str] = field(default_factory=set)

    def line(self) -> str:
        """One line for progress messages and the CLI."""
        return (f"{self.messages} messages, {self.threads} threads"
                + (f", {self.deleted} removed (deleted in Slack)" if self.deleted else "")
                + (f", {self.skipped} skipped (bots, joins)" if self.skipped else ""))


def _pages(call: Callable[..., dict], **kwargs) -> "list[dict]":
    cursor = None
    while True:
        page = call(**kwargs, cursor=cursor) if cursor else call(**kwargs)
        yield page
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor or not page.get("has_more", True):
            return


def backfill_channel(db, client: WebClient, team_id: str, channel_id: str, *, days: float,
                     answered_reaction: str = "white_check_mark",
                     progress: Callable[[BackfillResult], None] | None = None,
                     page_size: int = PAGE_SIZE) -> BackfillResult:
    """Fetch the last ``days`` days of ``channel_id`` and every thread in them into the store."""
    result = BackfillResult(channel_id)
    started = time.time()
    oldest = f"{started - days * 86400:.6f}"
    seen_top: set[str] = set()
    try:
        for page in _pages(client.conversations_history, channel=channel_id, oldest=oldest,
                           limit=page_size):
            result.pages += 1
            parents = []
            for msg in page.get("messages") or []:
                seen_top.add(str(msg.get("ts")))
                if _store(db, team_id, channel_id, msg, answered_reaction, result):
                    if msg.get("reply_count") or str(msg.get("thread_ts") or "") == str(msg["ts"]):
                        parents.append(str(msg["ts"]))
            for parent in parents:
                _thread(db, client, team_id, channel_id, parent, answered_reaction, result, page_size)
            if progress:
                progress(result)
    except SlackApiError as err:
        raise CurationError(
            f"backfill of channel {channel_id} failed: Slack answered "
            f"{err.response.get('error')!r} (is the bot a member of the channel, with the "
            "channels:history scope?)") from None
    # Top-level messages of the window that Slack no longer has were deleted meanwhile.
    for (ts,) in db.execute(
            "select ts from messages where team_id = ? and channel_id = ? and deleted = 0 and "
            "(thread_ts is null or thread_ts = ts) and cast(ts as real) >= ? and "
            "cast(ts as real) < ?", [team_id, channel_id, float(oldest), started]).fetchall():
        if ts not in seen_top:
            apply_delete(db, team_id, channel_id, ts, reason="deleted in Slack (backfill)")
            result.deleted += 1
    resolve_users(db, client, team_id, result.users)
    return result


def _store(db, team_id: str, channel_id: str, msg: dict, answered_reaction: str,
           result: BackfillResult) -> bool:
    """Store one message from a page; True when it is conversation (stored or deleted)."""
    if skip_reason(msg):
        result.skipped += 1
        return False
    if msg.get("subtype") == "tombstone":
        apply_delete(db, team_id, channel_id, str(msg["ts"]), reason="deleted in Slack")
        result.deleted += 1
        return True
    upsert_message(db, team_id, channel_id, msg, "backfill",
                   answered_reaction=answered_reaction)
    result.messages += 1
    result.users.add(msg.get("user") or "")
    return True


def _thread(db, client: WebClient, team_id: str, channel_id: str, parent: str,
            answered_reaction: str, result: BackfillResult, page_size: int) -> None:
    seen: set[str] = set()
    for page in _pages(client.conversations_replies, channel=channel_id, ts=parent,
                       limit=page_size):
        result.pages += 1
        with transaction(db):
            for msg in page.get("messages") or []:
                seen.add(str(msg.get("ts")))
                if str(msg.get("ts")) != parent:
                    _store(db, team_id, channel_id, msg, answered_reaction, result)
    result.threads += 1
    for (ts,) in db.execute(
            "select ts from messages where team_id = ? and channel_id = ? and thread_ts = ? and "
            "ts != ? and deleted = 0", [team_id, channel_id, parent, parent]).fetchall():
        if ts not in seen:
            apply_delete(db, team_id, channel_id, ts, reason="deleted in Slack (backfill)")
            result.deleted += 1
