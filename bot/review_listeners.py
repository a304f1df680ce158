"""Review listeners: the Approve / Edit / Reject buttons of review posts, the Edit and Reject modals,
and ✅/❌ reactions. Every listener acks before any Slack call; decisions go through
:func:`bot.review.apply` and are shown with :func:`bot.review.show`.

The reaction listener's matcher only matches reactions on review posts, so every other reaction
stays with the other listeners (bolt runs the first listener that matches; capture is a middleware
and sees every event anyway).
"""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient

from bot import review_blocks as rb
from bot.context import BotContext
from bot.review import apply, channel_of, decide, ephemeral, show, team_of
from bot.roles import has_role, refusal
from curation.candidates import get_candidate
from curation.errors import CurationError
from curation.ids import parse_id

APPROVE_REACTIONS = frozenset({"white_check_mark", "heavy_check_mark", "ballot_box_with_check"})
REJECT_REACTIONS = frozenset({"x", "negative_squared_cross_mark", "heavy_multiplication_x"})

#: /threadtune <name> handlers of this module.
SUBCOMMANDS: dict = {}


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
        ephemeral(client, channel, user, refusal(ctx.settings, "reviewer", action, team_id=team))
        return False

    def candidate_or_tell(client: WebClient, body: dict, value: str | None) -> dict[str, Any] | None:
        try:
            return get_candidate(ctx.db(), team_of(body), _candidate_id(value))
        except CurationError as err:
            ephemeral(client, channel_of(body), body["user"]["id"], f":warning: {err}")
            return None

    @app.action(rb.ACTION_APPROVE)
    def on_approve(ack, body, client, action):  # noqa: ANN001
        ack()
        user, channel = body["user"]["id"], channel_of(body)
        if not reviewer(client, user, channel, "approve pairs", team_of(body)):
            return
        try:
            decide(ctx, client, team_of(body), user, _candidate_id(action.get("value")), "approve")
        except CurationError as err:
            ephemeral(client, channel, user, f":warning: {err}")

    def open_form(ack, body, client, action, verb: str, modal) -> None:  # noqa: ANN001
        ack()
        if not reviewer(client, body["user"]["id"], channel_of(body), verb, team_of(body)):
            return
        c = candidate_or_tell(client, body, action.get("value"))
        if c is not None:
            client.views_open(trigger_id=body["trigger_id"], view=modal(c))

    @app.action(rb.ACTION_EDIT)
    def on_edit(ack, body, client, action):  # noqa: ANN001
        open_form(ack, body, client, action, "edit pairs", rb.edit_modal)

    @app.action(rb.ACTION_REJECT)
    def on_reject(ack, body, client, action):  # noqa: ANN001
        open_form(ack, body, client, action, "reject pairs", rb.reject_modal)

    def submit(ack, body, view, client, action: str) -> None:  # noqa: ANN001
        # The decision is applied before the ack (a refusal shows in the form, and the store is
        # local and quick); every Slack call that shows it comes after: a 429 on chat.update must
        # not hold the ack past Slack's 3 s, or the user sees an error for what happened.
        user = body["user"]["id"]
        block = rb.BLOCK_ANSWER if action == "edit" else rb.BLOCK_REASON
        if not has_role(ctx.settings, user, "reviewer", client, team_id=team_of(body)):
            ack(response_action="errors", errors={block: refusal(ctx.settings, "reviewer", f"{action} pairs",
                                                        team_id=team_of(body))[:150]})
            return
        cid = rb.candidate_id_of(view.get("private_metadata"))
        if cid is None:
            ack(response_action="errors", errors={block: "This form is out of date; open it again."})
            return
        try:
            if action == "edit":
                # an empty field was too long to prefill: it keeps the stored text
                d = apply(ctx, team_of(body), user, cid, "edit",
                          question=rb.submitted(view, rb.BLOCK_QUESTION) or None,
                          answer=rb.submitted(view, rb.BLOCK_ANSWER) or None)
            else:
                d = apply(ctx, team_of(body), user, cid, "reject", reason=rb.submitted(view, rb.BLOCK_REASON))
        except CurationError as err:
            ack(response_action="errors", errors={block: str(err)[:150]})
            return
        ack()
        show(ctx, client, user, action, d)

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
                        team_of(body)):
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
            ephemeral(client, item["channel"], user, f":warning: {err}")
