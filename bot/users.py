"""Display names: ``users.info`` looked up once per user and cached in the ``users`` table, so that
transcripts read "Ana: …" instead of "U024BE7LH: …"."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.context import BotContext
from curation.users import upsert_users

log = logging.getLogger(__name__)

#: A cached profile older than this is looked up again.
MAX_AGE = dt.timedelta(days=7)


def unknown_users(db, team_id: str, user_ids: Iterable[str]) -> list[str]:
    """Those of ``user_ids`` with no cached profile, or one older than :data:`MAX_AGE`."""
    ids = sorted({u for u in user_ids if u})
    if not ids:
        return []
    cutoff = (dt.datetime.now(dt.UTC) - MAX_AGE).isoformat(timespec="seconds")
    fresh = {r[0] for r in db.execute(
        f"select id from users where team_id = ? and updated_at >= ? and id in "
        f"({', '.join('?' for _ in ids)})", [team_id, cutoff, *ids]).fetchall()}
    return [u for u in ids if u not in fresh]


def resolve_users(db, client: WebClient, team_id: str, user_ids: Iterable[str]) -> int:
    """Look up uncached users with ``users.info`` and cache them; returns how many were fetched.
    A user Slack does not know is cached under its id, so it is not asked for again this week;
    other failures are skipped and retried on the next sighting."""
    fetched = 0
    for user_id in unknown_users(db, team_id, user_ids):
        try:
            user = client.users_info(user=user_id)["user"]
        except SlackApiError as err:
            log.info("users.info %s failed: %s", user_id, err.response.get("error"))
            if err.response.get("error") != "user_not_found":
                continue  # try again next time
            user = {"id": user_id, "name": user_id}
        except OSError as err:  # Slack unreachable: names are a nicety, the data is stored
            log.info("users.info %s failed: %s", user_id, err)
            continue
        upsert_users(db, team_id, [user])
        fetched += 1
    return fetched


class UserResolver:
    """Resolves names off the request path: capture acks at once, names arrive a moment later."""

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="threadtune-users")
        self._pending: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def ensure(self, client: WebClient, team_id: str, user_id: str | None) -> None:
        """Queue a lookup of ``user_id`` unless it is cached or already queued."""
        if not user_id or not unknown_users(self.ctx.db(), team_id, [user_id]):
            return
        key = (team_id, user_id)
        with self._lock:
            if key in self._pending:
                return
            self._pending.add(key)
        self._pool.submit(self._resolve, client, key)

    def _resolve(self, client: WebClient, key: tuple[str, str]) -> None:
        try:
            resolve_users(self.ctx.db(), client, key[0], [key[1]])
        except Exception:  # a name is a nicety; never let it break capture
            log.exception("resolving user %s failed", key[1])
        finally:
            with self._lock:
                self._pending.discard(key)
