"""Review in Slack: candidate posts with Approve / Edit / Reject, modals, ✅/❌ reactions, and the
`/threadtune review` command (`/threadtune curate` queues a job for the worker: bot/jobs.py).

- Each candidate is posted as its own message (decisions go into its thread) to the review channel,
  or, in ``source_thread`` mode, into the support thread it came from.
- Only reviewers (and admins) act; anyone else gets an ephemeral refusal naming who can.
- Every decision goes through :mod:`curation.review` (one audit row each), then ``chat.update``
  redraws the post with its status.
- Posting is paced to about one message per second per channel, with a daily cap.
- ✅/❌ reactions on a review post count as approve/reject. The reaction listener's matcher only
  matches reactions on review posts, so every other reaction stays with the other listeners (bolt
  runs the first listener that matches; capture is a middleware and sees every event anyway).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import review_blocks as rb
from bot.context import BotContext, envelope_team
from bot.roles import has_role, refusal
from bot.slash import SlashRequest
from curation import review
from curation.candidates import get_candidate, list_candidates
from curation.errors import CurationError
from curation.ids import parse_id
from curation.store import now
from threadtune.settings import Settings

log = logging.getLogger(__name__)

APPROVE_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})
REJECT_REACTIONS = frozenset({"x", "negative_squared_cross_mark", "heavy_multiplication_x"})
DEFAULT_BATCH = 10
MAX_BATCH = 50
PACE_S = 1.0


class Pacer:
    """At most one post per ``interval_s`` per channel (Slack allows about one per second)."""

    def __init__(self, interval_s: float = PACE_S) -> None:
        self.interval_s = interval_s
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        with self._lock:
            at = max(time.monotonic(), self._next.get(channel, 0.0))
            self._next[channel] = at + self.interval_s
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)


_pacer = Pacer()


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


def _destination(settings: Settings, c: dict[str, Any]) -> tuple[str, str | None]:
    """(channel, thread_ts): the review channel, or the source thread in source_thread mode."""
    if settings.review_mode == "source_thread":
        for s in c["sources"]:
            if s["kind"] == "message" and s["channel_id"] and s["ts"]:
                return s["channel_id"], s["ts"]
    if not settings.review_channel:
        raise CurationError("no review channel: set THREADTUNE_REVIEW_CHANNEL to a channel id "
                            "(or THREADTUNE_REVIEW_MODE=source_thread)")
    return settings.review_channel, None


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
                    pacer: Pacer | None = None) -> Posted:
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
            channel, thread_ts = _destination(settings, c)
        except CurationError as err:  # e.g. a document's pair in source_thread mode, no channel set
            result.errors.append(f"#{c['id']}: {err}")
            continue
        _fill_permalinks(db, client, c)
        pacer.wait(channel)
        try:
            resp = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=rb.candidate_text(c),
                                           blocks=rb.candidate_blocks(c, quorum=settings.review_quorum),
                                           unfurl_links=False, unfurl_media=False)
        except SlackApiError as err:
            result.errors.append(f"#{c['id']}: {err.response.get('error')}")
            if err.response.get("error") in ("channel_not_found", "not_in_channel", "is_archived"):
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
    try:
        client.chat_update(channel=c["review_channel"], ts=c["review_ts"], text=rb.candidate_text(c),
                           blocks=rb.candidate_blocks(c, quorum=ctx.settings.review_quorum))
    except SlackApiError as err:
        log.warning("could not redraw review post of candidate %s: %s", c["id"], err.response.get("error"))


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


def _ephemeral(client: WebClient, channel: str | None, user: str, text: str) -> None:
    if not channel:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError as err:
        log.info("ephemeral to %s failed: %s", user, err.response.get("error"))


def _team(body: dict[str, Any]) -> str:
    return envelope_team(body)


def _channel(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def decide(ctx: BotContext, client: WebClient, team_id: str, user: str, candidate_id: int, action: str,
           *, reason: str | None = None, question: str | None = None, answer: str | None = None,
           via: str = "slack") -> review.Decision:
    """Apply one review action and show it in Slack (redraw the post, note it in its thread)."""
    db = ctx.db()
    if action == "approve":
        d = review.approve(db, team_id, candidate_id, user, via=via, quorum=ctx.settings.review_quorum)
    elif action == "reject":
        d = review.reject(db, team_id, candidate_id, user, reason or "", via=via)
    else:
        d = review.edit(db, team_id, candidate_id, user, question=question, answer=answer, via=via)
    if d.changed:
        redraw(ctx, client, d.candidate)
        _note(client, d.candidate, action, user, d.message)
        if d.candidate["status"] == "approved":
            from bot.escalation import notify_answered

            notify_answered(ctx, client, team_id, candidate_id)  # an open question's asker waits
    return d


# --- slash commands ----------------------------------------------------------------------------


def review_command(ctx: BotContext, req: SlashRequest, client: WebClient, respond) -> None:  # noqa: ANN001
    """Post the next batch of candidates for review: `/threadtune review [N]` (reviewers)."""
    if not has_role(ctx.settings, req.user_id, "reviewer", client, team_id=req.team_id):
        respond(text=refusal(ctx.settings, "reviewer", "pull candidates for review"), response_type="ephemeral")
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


# --- listeners ---------------------------------------------------------------------------------


def _candidate_id(value: Any) -> int:
    cid = parse_id(value)
    if cid is None:
        raise CurationError(f"{str(value)[:40]!r} is not a candidate id; use the buttons of a current "
                            "review post")
    return cid


def register(app, ctx: BotContext) -> None:
    """Buttons, modals and reactions of review posts."""

    def reviewer(client: WebClient, user: str, channel: str | None, action: str, team: str) -> bool:
        if has_role(ctx.settings, user, "reviewer", client, team_id=team):
            return True
        _ephemeral(client, channel, user, refusal(ctx.settings, "reviewer", action))
        return False

    def candidate_or_tell(client: WebClient, body: dict, value: str | None) -> dict[str, Any] | None:
        try:
            return get_candidate(ctx.db(), _team(body), _candidate_id(value))
        except CurationError as err:
            _ephemeral(client, _channel(body), body["user"]["id"], f":warning: {err}")
            return None

    @app.action(rb.ACTION_APPROVE)
    def on_approve(ack, body, client, action):  # noqa: ANN001
        ack()
        user, channel = body["user"]["id"], _channel(body)
        if not reviewer(client, user, channel, "approve pairs", _team(body)):
            return
        try:
            decide(ctx, client, _team(body), user, _candidate_id(action.get("value")), "approve")
        except CurationError as err:
            _ephemeral(client, channel, user, f":warning: {err}")

    @app.action(rb.ACTION_EDIT)
    def on_edit(ack, body, client, action):  # noqa: ANN001
        ack()
        if not reviewer(client, body["user"]["id"], _channel(body), "edit pairs", _team(body)):
            return
        c = candidate_or_tell(client, body, action.get("value"))
        if c is not None:
            client.views_open(trigger_id=body["trigger_id"], view=rb.edit_modal(c))

    @app.action(rb.ACTION_REJECT)
    def on_reject(ack, body, client, action):  # noqa: ANN001
        ack()
        if not reviewer(client, body["user"]["id"], _channel(body), "reject pairs", _team(body)):
            return
        c = candidate_or_tell(client, body, action.get("value"))
        if c is not None:
            client.views_open(trigger_id=body["trigger_id"], view=rb.reject_modal(c))

    def submit(ack, body, view, client, action: str) -> None:  # noqa: ANN001
        user = body["user"]["id"]
        block = rb.BLOCK_ANSWER if action == "edit" else rb.BLOCK_REASON
        if not has_role(ctx.settings, user, "reviewer", client, team_id=_team(body)):
            ack(response_action="errors", errors={block: refusal(ctx.settings, "reviewer", f"{action} pairs")[:150]})
            return
        cid = rb.candidate_id_of(view.get("private_metadata"))
        if cid is None:
            ack(response_action="errors", errors={block: "This form is out of date; open it again."})
            return
        try:
            if action == "edit":
                question = rb.submitted(view, rb.BLOCK_QUESTION)
                answer = rb.submitted(view, rb.BLOCK_ANSWER)
                decide(ctx, client, _team(body), user, cid, "edit", question=question, answer=answer)
            else:
                decide(ctx, client, _team(body), user, cid, "reject", reason=rb.submitted(view, rb.BLOCK_REASON))
        except CurationError as err:
            ack(response_action="errors", errors={block: str(err)[:150]})
            return
        ack()

    @app.view(rb.VIEW_EDIT)
    def on_edit_submit(ack, body, view, client):  # noqa: ANN001
        submit(ack, body, view, client, "edit")

    @app.view(rb.VIEW_REJECT)
    def on_reject_submit(ack, body, view, client):  # noqa: ANN001
        submit(ack, body, view, client, "reject")

    def review_post_reaction(body: dict) -> bool:
        """Matcher: a ✅/❌ reaction on one of our review posts."""
        event = body.get("event") or {}
        item = event.get("item") or {}
        if event.get("reaction") not in APPROVE_REACTIONS | REJECT_REACTIONS or item.get("type") != "message":
            return False
        row = ctx.db().execute(
            "select 1 from candidates where team_id = ? and review_channel = ? and review_ts = ?",
            [body.get("team_id") or "", item.get("channel"), str(item.get("ts"))]).fetchone()
        return row is not None

    @app.event("reaction_added", matchers=[review_post_reaction])
    def on_reaction(ack, body, event, client):  # noqa: ANN001
        ack()
        user, item = event.get("user") or "", event["item"]
        approve = event["reaction"] in APPROVE_REACTIONS
        if not reviewer(client, user, item["channel"], "approve pairs" if approve else "reject pairs",
                        _team(body)):
            return
        row = ctx.db().execute(
            "select id from candidates where team_id = ? and review_channel = ? and review_ts = ?",
            [body["team_id"], item["channel"], str(item["ts"])]).fetchone()
        try:
            if approve:
                decide(ctx, client, body["team_id"], user, row[0], "approve", via="reaction")
            else:
                decide(ctx, client, body["team_id"], user, row[0], "reject",
                       reason=f"rejected with :{event['reaction']}:", via="reaction")
        except CurationError as err:
            _ephemeral(client, item["channel"], user, f":warning: {err}")
