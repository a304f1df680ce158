"""Review in Slack: posting candidates, applying decisions and showing them, and the
`/threadtune review` command (`/threadtune curate` queues a job for the worker: bot/jobs.py). The
buttons, modals and reactions that lead to decisions are in ``bot/review_listeners.py``.

- Each candidate is posted as its own message (decisions go into its thread) to the review channel,
  or, in ``source_thread`` mode, into the support thread it came from.
- Only reviewers (and admins) act; anyone else gets an ephemeral refusal naming who can.
- Every decision goes through :mod:`curation.review` (one audit row each), then ``chat.update``
  redraws the post with its status.
- Posting is paced to about one message per second per channel, with a daily cap.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import review_blocks as rb
from bot.context import BotContext, envelope_team
from bot.ephemeral import tell
from bot.rate_limit import RateLimiter, pacer
from bot.roles import has_role, refusal
from bot.slash import SlashRequest
from curation import review
from curation.candidates import get_candidate, list_candidates
from curation.errors import CurationError
from curation.status_message import StatusMessage
from curation.store import now
from threadtune.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BATCH = 10
MAX_BATCH = 50
PACE_S = 1.0


_pacer = pacer(PACE_S)


@dataclass
class Posted:
    """What :func:`post_candidates` did."""

    posted: int = 0
    remaining: int = 0  # still waiting to be posted
    capped: bool = False
    errors: list[str] | None = None


def posted_today(db, team_id: str) -> int:
    """Candidates posted for review since midnight UTC (the daily cap counts these)."""
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return db.execute("select count(*) from candidates where team_id = ? and review_posted_at >= ?",
                      [team_id, midnight.isoformat(timespec="seconds")]).fetchone()[0]


#: chat.postMessage errors that make a channel unusable for review posts.
CHANNEL_GONE = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
#: Errors of a reply into a source thread that is gone (its root deleted, its channel too).
THREAD_GONE = CHANNEL_GONE | {"cannot_reply_to_message", "thread_not_found", "message_not_found"}


def _destinations(settings: Settings, c: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Where to post, in order, as (channel, thread_ts): in source_thread mode the source thread,
    then the review channel (for a thread or a channel that is gone); else the review channel."""
    places: list[tuple[str, str | None]] = []
    if settings.review_mode == "source_thread":
        places += [(s["channel_id"], s["ts"]) for s in c["sources"]
                   if s["kind"] == "message" and s["channel_id"] and s["ts"]][:1]
    if settings.review_channel:
        places.append((settings.review_channel, None))
    if not places:
        raise CurationError("no review channel: set THREADTUNE_REVIEW_CHANNEL to a channel id "
                            "(or THREADTUNE_REVIEW_MODE=source_thread)")
    return places


def _fill_permalinks(db, client: WebClient, c: dict[str, Any]) -> None:
    for s in c["sources"]:
        if s["kind"] == "message" and s["channel_id"] and s["ts"] and not s["permalink"]:
            try:
                link = client.chat_getPermalink(channel=s["channel_id"], message_ts=s["ts"])["permalink"]
            except SlackApiError:
                continue
            s["permalink"] = link
            db.execute("update candidate_sources set permalink = ? where candidate_id = ? and "
                       "channel_id = ? and ts = ?", [link, c["id"], s["channel_id"], s["ts"]])


def post_candidates(ctx: BotContext, client: WebClient, team_id: str, *, limit: int = DEFAULT_BATCH,
                    pacer: RateLimiter | None = None) -> Posted:
    """Post the next pending, not yet posted candidates for review (paced, within the daily cap)."""
    db, settings = ctx.db(), ctx.settings
    pacer = pacer or _pacer
    room = max(0, settings.review_daily_cap - posted_today(db, team_id))
    waiting = [c for c in list_candidates(db, team_id, status="pending", include_stale=False)
               if not c["review_ts"]]
    batch = waiting[: min(limit, room)]
    result = Posted(remaining=len(waiting), capped=room < min(limit, len(waiting)), errors=[])
    for c in batch:
        try:
            places = _destinations(settings, c)
        except CurationError as err:  # e.g. a document's pair in source_thread mode, no channel set
            result.errors.append(f"#{c['id']}: {err}")
            continue
        _fill_permalinks(db, client, c)
        resp, error = None, None
        for channel, thread_ts in places:
            pacer.wait(channel)
            try:
                resp = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=rb.candidate_text(c),
                                               blocks=rb.candidate_blocks(c, quorum=settings.review_quorum),
                                               unfurl_links=False, unfurl_media=False)
                break
            except SlackApiError as err:
                error = err.response.get("error")
                if thread_ts is None or error not in THREAD_GONE:
                    break
        if resp is None:
            result.errors.append(f"#{c['id']}: {error}")
            if thread_ts is None and error in CHANNEL_GONE:  # the review channel itself: stop here
                break
            continue
        db["candidates"].update(c["id"], {"review_channel": resp["channel"], "review_ts": resp["ts"],
                                          "review_posted_at": now()})
        result.posted += 1
        result.remaining -= 1
    return result


def redraw(ctx: BotContext, client: WebClient, c: dict[str, Any]) -> None:
    """Redraw a candidate's review post with its current status (``chat.update``)."""
    if not c.get("review_channel") or not c.get("review_ts"):
        return
    StatusMessage(client, c["review_channel"], ts=c["review_ts"], team_id=c.get("team_id") or "",
                  budget=ctx.updates()).update(
        rb.candidate_text(c), rb.candidate_blocks(c, quorum=ctx.settings.review_quorum), final=True)


def show_stale(ctx: BotContext, client: WebClient, team_id: str, candidate_ids: list[int]) -> int:
    """Tell reviewers that pairs went stale (a source was deleted or forgotten): redraw their posts
    without the Approve/Edit buttons and note why in each post's thread. Returns posts updated.

    For the parts that mark pairs stale (``curation.deletion.apply_delete``, forget)."""
    shown = 0
    for cid in candidate_ids:
        try:
            c = get_candidate(ctx.db(), team_id, cid)
        except CurationError:
            continue
        if not c.get("review_ts"):
            continue
        redraw(ctx, client, c)
        _note(client, c, "stale", "threadtune", c.get("stale_reason") or "its source was deleted")
        shown += 1
    return shown


def _note(client: WebClient, c: dict[str, Any], action: str, actor: str, message: str) -> None:
    if not c.get("review_channel") or not c.get("review_ts"):
        return
    try:
        client.chat_postMessage(channel=c["review_channel"], thread_ts=c["review_ts"],
                                text=rb.decision_text(action, actor, message))
    except SlackApiError as err:
        log.warning("could not note the decision on candidate %s: %s", c["id"], err.response.get("error"))


def ephemeral(client: WebClient, channel: str | None, user: str, text: str) -> None:
    """A note to the reviewer who acted (a DM when Slack cannot show it in ``channel``)."""
    tell(client, channel, user, text)


def team_of(body: dict[str, Any]) -> str:
    return envelope_team(body)


def channel_of(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def decide(ctx: BotContext, client: WebClient, team_id: str, user: str, candidate_id: int, action: str,
           *, reason: str | None = None, question: str | None = None, answer: str | None = None,
           via: str = "slack") -> review.Decision:
    """Apply one review action and show it in Slack (redraw the post, note it in its thread)."""
    d = apply(ctx, team_id, user, candidate_id, action, reason=reason, question=question, answer=answer,
              via=via)
    show(ctx, client, user, action, d)
    return d


def apply(ctx: BotContext, team_id: str, user: str, candidate_id: int, action: str, *,
          reason: str | None = None, question: str | None = None, answer: str | None = None,
          via: str = "slack") -> review.Decision:
    """Apply one review action in the store (no Slack call: a modal applies it before its ack,
    so that a refusal can be shown in the form)."""
    db = ctx.db()
    if action == "approve":
        d = review.approve(db, team_id, candidate_id, user, via=via, quorum=ctx.settings.review_quorum)
    elif action == "reject":
        d = review.reject(db, team_id, candidate_id, user, reason or "", via=via)
    else:
        d = review.edit(db, team_id, candidate_id, user, question=question, answer=answer, via=via)
    return d


def show(ctx: BotContext, client: WebClient, user: str, action: str, d: review.Decision) -> None:
    """Show an applied decision: redraw the post and note it in its thread."""
    if d.changed:
        redraw(ctx, client, d.candidate)
        _note(client, d.candidate, action, user, d.message)
        if d.candidate["status"] == "approved":
            from bot.escalation import notify_answered

            # an open question's asker waits
            notify_answered(ctx.db(), client, d.candidate["team_id"], d.candidate["id"])


# --- slash commands ----------------------------------------------------------------------------


def review_command(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """Post the next batch of candidates for review: `/threadtune review [N]` (reviewers)."""
    if not has_role(ctx.settings, req.user_id, "reviewer", client, team_id=req.team_id):
        respond(text=refusal(ctx.settings, "reviewer", "pull candidates for review", team_id=req.team_id),
                response_type="ephemeral")
        return
    try:
        limit = min(MAX_BATCH, max(1, int(req.args[0]))) if req.args else DEFAULT_BATCH
    except ValueError:
        respond(f":warning: `{req.args[0]}` is not a number: `/threadtune review [N]` posts N candidates.")
        return
    where = "in their source threads" if ctx.settings.review_mode == "source_thread" else \
        f"to <#{ctx.settings.review_channel}>"
    respond(f":mag: Posting up to {limit} candidates {where}…")

    def work() -> None:
        try:
            result = post_candidates(ctx, client, req.team_id, limit=limit)
        except CurationError as err:
            respond(f":warning: {err}")
            return
        except Exception:
            log.exception("posting candidates failed")
            respond(":warning: posting candidates failed; the error is in the bot's log.")
            return
        text = f":inbox_tray: Posted {result.posted} candidates; {result.remaining} still waiting."
        if result.capped:
            text += f" The daily cap ({ctx.settings.review_daily_cap}) is reached; more tomorrow."
        if result.errors:
            text += " Errors: " + "; ".join(result.errors[:3])
        respond(text)

    threading.Thread(target=work, name="review-post", daemon=True).start()


SUBCOMMANDS = {"review": review_command}


def register(app, ctx: BotContext) -> None:  # noqa: ANN001
    """The review listeners are added by ``bot/review_listeners.py``."""
