"""`/threadtune forget @user` (admins): remove a user's messages and derived pairs; tell reviewers.

Also the bot's side of erasure: after a deletion or a forget, :func:`erase_residue_soon` merges the
full-text indexes and checkpoints the WAL on a background thread, so that the text leaves every
byte of the store without delaying Slack's acknowledgement.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from slack_sdk.errors import SlackApiError

from bot import mentions
from bot.context import BotContext
from bot.review import show_stale
from bot.roles import has_role, refusal
from curation.erasure import erase_residue
from curation.privacy import Forgotten, forget_user

log = logging.getLogger(__name__)
def stale_notice(user_id: str, result: Forgotten) -> str:
    """What reviewers are told after a forget."""
    ids = ", ".join(f"#{i}" for i in result.stale_candidates[:30]) or "none"
    more = "" if len(result.stale_candidates) <= 30 else f" and {len(result.stale_candidates) - 30} more"
    return (f":wastebasket: Data of <@{user_id}> was forgotten: {result.summary()}. Stale pairs leave the "
            f"next dataset version: {ids}{more}. Models trained before keep what they learned until "
            "they are retrained.")


def forget(ctx: BotContext, req, client, respond) -> None:
    """Remove a user's messages and the pairs derived from them (admins): `forget @user`."""
    if not has_role(ctx.settings, req.user_id, "admin", client, team_id=req.team_id):
        respond(refusal(ctx.settings, "admin", "forget a user's data", team_id=req.team_id))
        return
    if not req.args or not mentions.is_user_ref(req.args[0]):
        respond("Usage: `/threadtune forget @user`")
        return
    user_id = mentions.user_id(ctx.db(), client, req.team_id, req.args[0])
    result = forget_user(ctx.db(), req.team_id, user_id, actor=req.user_id, via="slack")
    erase_residue(ctx.db())
    respond(f"Done. {result.summary()}.")
    show_stale(ctx, client, req.team_id, result.stale_candidates)
    if ctx.settings.review_channel:
        try:
            client.chat_postMessage(channel=ctx.settings.review_channel, text=stale_notice(user_id, result))
        except SlackApiError as err:
            log.warning("could not tell reviewers about a forget: %s", err.response.get("error"))


_eraser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="threadtune-erase")
_due: set[int] = set()  # the bots (id of their context) with a run queued
_due_lock = threading.Lock()


def erase_residue_soon(ctx: BotContext, write_lock: threading.Lock | None = None) -> None:
    """Run :func:`curation.erasure.erase_residue` on a background thread; a burst of deletions
    queues one run per bot, not one per deletion. ``write_lock`` is the caller's writer queue, if any."""
    with _due_lock:
        if id(ctx) in _due:
            return
        _due.add(id(ctx))
    _eraser.submit(_erase, ctx, write_lock)


#: Deletions within this many seconds share one erasure run (merging the index costs a pass over it).
ERASE_DEBOUNCE_S = 1.0


def _erase(ctx: BotContext, write_lock: threading.Lock | None) -> None:
    time.sleep(ERASE_DEBOUNCE_S)
    with _due_lock:
        _due.discard(id(ctx))
    try:
        if write_lock is None:
            erase_residue(ctx.db())
        else:
            with write_lock:
                erase_residue(ctx.db())
    except Exception:  # the next deletion runs it again; never lose the thread
        log.exception("erasing index and WAL residue failed")


SUBCOMMANDS = {"forget": forget}


def register(app, ctx: BotContext) -> None:
    """No listeners beyond the slash subcommand."""
