"""Channel and user references in slash-command text, in both forms Slack sends.

The manifest sets ``should_escape: true`` for ``/threadtune``, so Slack sends ``<#C123|support>`` and
``<@U123|ana>``. An app created from an older manifest, or edited by hand, gets what the person
typed: ``#support`` and ``@ana``. Both work: a plain name is looked up in the store, then, on a miss,
with ``conversations.list`` / ``users.list``, whose answers are cached in the store (``channels`` and
``users`` tables) so the next lookup asks Slack nothing. A name that matches nothing is an error
that says so, never "the channel you typed in".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from curation.channels import upsert_channels
from curation.errors import CurationError
from curation.store import transaction
from curation.users import upsert_users

log = logging.getLogger(__name__)

_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$|^([CGD][A-Z0-9]{2,})$")
_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^@?([UW][A-Z0-9]{4,})$")
_NAME = re.compile(r"^[#@]([\w.\-]{1,80})$")
#: Pages of conversations.list / users.list read for one lookup (1,000 each).
MAX_PAGES = 20


def is_channel_ref(word: str) -> bool:
    """Whether ``word`` is meant as a channel: ``<#C…>``, ``C…`` or ``#name``."""
    return bool(_CHANNEL.match(word.strip()) or word.strip().startswith("#"))


def is_user_ref(word: str) -> bool:
    """Whether ``word`` is meant as a user: ``<@U…>``, ``U…`` or ``@name``."""
    return bool(_USER.match(word.strip()) or word.strip().startswith("@"))


def _resolve(db: Any, client: WebClient, team_id: str, word: str, ref: re.Pattern[str], sigil: str,
             stored: Any, cache: Any, not_a: str, not_found: str) -> str:
    """The id ``word`` names: an id or escaped reference as is, else a ``sigil``-name looked up in the
    store, then (once) in Slack's list; CurationError with ``not_a``/``not_found`` otherwise."""
    word = word.strip()
    m = ref.match(word)
    if m:
        return m.group(1) or m.group(2)
    name = _name(word, sigil)
    if name is None:
        raise CurationError(not_a.format(word=word))
    found = stored(db, team_id, name)
    if found is None:
        cache(db, client, team_id)
        found = stored(db, team_id, name)
    if found is None:
        raise CurationError(not_found.format(name=name))
    return found


def channel_id(db: Any, client: WebClient, team_id: str, word: str) -> str:
    """The channel id ``word`` names; CurationError when it names none."""
    return _resolve(db, client, team_id, word, _CHANNEL, "#", _stored_channel, _cache_channels,
                    "`{word}` is not a channel; name it as #channel.",
                    "I see no channel named #{name}; check the name, or invite me to it "
                    "with `/invite @threadtune` if it is private.")


def user_id(db: Any, client: WebClient, team_id: str, word: str) -> str:
    """The user id ``word`` names; CurationError when it names none."""
    return _resolve(db, client, team_id, word, _USER, "@", _stored_user, _cache_users,
                    "`{word}` is not a user; name them as @user.",
                    "I see no user named @{name} in this workspace; check the name.")


def _name(word: str, sigil: str) -> str | None:
    m = _NAME.match(word)
    return m.group(1).lower() if m and word.startswith(sigil) else None


def _stored_channel(db: Any, team_id: str, name: str) -> str | None:
    row = db.execute("select id from channels where team_id = ? and lower(name) = ? and is_im = 0 "
                     "order by watched desc limit 1", [team_id, name]).fetchone()
    return row[0] if row else None


def _stored_user(db: Any, team_id: str, name: str) -> str | None:
    rows = db.execute("select id from users where team_id = ? and (lower(name) = ? or "
                      "lower(display_name) = ?) limit 2", [team_id, name, name]).fetchall()
    return rows[0][0] if len(rows) == 1 else None


def _pages(call: Any, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    cursor = None
    for _ in range(MAX_PAGES):
        page = call(limit=1000, cursor=cursor, **kwargs) if cursor else call(limit=1000, **kwargs)
        yield from page.get(key) or []
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return


def _cache_channels(db: Any, client: WebClient, team_id: str) -> None:
    try:
        found = [{"id": c["id"], "name": c.get("name"), "is_private": bool(c.get("is_private"))}
                 for c in _pages(client.conversations_list, "channels", exclude_archived=True,
                                 types="public_channel,private_channel") if c.get("id")]
    except SlackApiError as err:
        raise CurationError(f"I could not list channels ({err.response.get('error')}); name the "
                            "channel by picking it from Slack's list.") from None
    with transaction(db):
        upsert_channels(db, team_id, found)


def _cache_users(db: Any, client: WebClient, team_id: str) -> None:
    try:
        found = [u for u in _pages(client.users_list, "members") if u.get("id") and not u.get("deleted")]
    except SlackApiError as err:
        raise CurationError(f"I could not list users ({err.response.get('error')}); name the user "
                            "by picking them from Slack's list.") from None
    with transaction(db):
        upsert_users(db, team_id, found)
