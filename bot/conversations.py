"""Whether a conversation is private. What is said in a private channel or a DM stays there: the
bot never copies a question from one into the review channel (see README, "Security, privacy and
reliability")."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlite_utils import Database


def is_private(db: Database, client: WebClient, team_id: str, channel: str | None) -> bool:
    """True for a DM, a group DM or a private channel, and for a conversation whose privacy cannot
    be learned (the store, else ``conversations.info``): unknown counts as private, as it does for
    who may see a pair (``curation.visibility``)."""
    if not channel or channel[0] in ("D", "G"):
        return True
    row = db.execute("select is_private, is_im from channels where team_id = ? and id = ?",
                     [team_id, channel]).fetchone()
    if row is not None:
        return bool(row[0] or row[1])
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except SlackApiError:
        return True
    return bool(info.get("is_private") or info.get("is_im") or info.get("is_mpim"))
