"""A note to one person: ephemeral in the channel they acted in, else a DM.

Slack refuses an ephemeral message to someone who is not (or no longer) a member of the channel
(``user_not_in_channel``), and in a channel the bot cannot post to; the person would then hear
nothing about what they just did, so the note goes to them directly.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

#: Errors of chat.postEphemeral after which a DM still reaches the person.
DM_INSTEAD = frozenset({"user_not_in_channel", "channel_not_found", "not_in_channel", "is_archived"})


def tell(client: WebClient, channel: str | None, user: str | None, text: str, *,
         thread_ts: str | None = None) -> bool:
    """Show ``text`` to ``user`` alone in ``channel`` (in its thread ``thread_ts``; a DM without a
    channel, or when Slack cannot show it there); True when Slack took it."""
    if not user:
        return False
    if channel:
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
            return True
        except SlackApiError as err:
            error = err.response.get("error")
            if error not in DM_INSTEAD:
                log.info("ephemeral to %s failed: %s", user, error)
                return False
    try:
        client.chat_postMessage(channel=user, text=text)
        return True
    except SlackApiError as err:
        log.info("could not tell %s: %s", user, err.response.get("error"))
        return False
