"""A Slack thread as a readable transcript: display names, resolved mentions and links, code
blocks kept, and the reply that the "answered" reaction marks flagged.

The raw text stays in ``messages``; a transcript is built on demand for prompts and checks.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from sqlite_utils import Database

from curation.store import loads

#: Message subtypes that carry no support content.
SKIP_SUBTYPES = frozenset(
    {"channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
     "bot_message", "bot_add", "bot_remove", "pinned_item", "reminder_add", "tombstone",
     "group_join", "group_leave"}
)

_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#(C[A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto|ftp):[^>|]+)(?:\|([^>]*))?>")


@dataclass(frozen=True)
class Turn:
    """One message of a thread, rendered."""

    ts: str
    user_id: str
    name: str
    text: str
    answered: bool = False


@dataclass(frozen=True)
class Transcript:
    """A rendered thread: the root turn first, then the replies in time order."""

    channel_id: str
    thread_ts: str
    turns: list[Turn] = field(default_factory=list)

    @property
    def root(self) -> Turn | None:
        return self.turns[0] if self.turns else None

    @property
    def replies(self) -> list[Turn]:
        return self.turns[1:]

    @property
    def answered(self) -> Turn | None:
        """The reply flagged as the answer, if any (the last one when several are)."""
        flagged = [t for t in self.replies if t.answered]
        return flagged[-1] if flagged else None

    @property
    def text(self) -> str:
        return format_turns(self.turns)


def render_text(text: str | None, names: dict[str, str] | None = None,
                channels: dict[str, str] | None = None) -> str:
    """Slack markup to plain text: ``<@U1>`` → ``@name``, ``<url|label>`` → ``label (url)``,
    ``<#C1|x>`` → ``#x``; HTML entities unescaped; code blocks kept as they are."""
    names, channels = names or {}, channels or {}
    if not text:
        return ""

    def user(m: re.Match[str]) -> str:
        return "@" + (names.get(m.group(1)) or m.group(2) or m.group(1))

    def channel(m: re.Match[str]) -> str:
        return "#" + (m.group(2) or channels.get(m.group(1)) or m.group(1))

    def link(m: re.Match[str]) -> str:
        url, label = m.group(1), m.group(2)
        url = url.removeprefix("mailto:") if url.startswith("mailto:") else url
        if not label or label == url or label == m.group(1).removeprefix("mailto:"):
            return url
        return f"{label} ({url})"

    out = _USER.sub(user, text)
    out = _CHANNEL.sub(channel, out)
    out = _SPECIAL.sub(lambda m: "@" + m.group(1), out)
    out = _SUBTEAM.sub(lambda m: "@" + (m.group(1) or "group").lstrip("@"), out)
    out = _LINK.sub(link, out)
    return html.unescape(out)


def format_turns(turns: list[Turn]) -> str:
    """The transcript text: one block per message, the root and the answered reply labelled."""
    lines = []
    for i, turn in enumerate(turns):
        label = " (question)" if i == 0 else (" [ANSWERED: marked as the solution]" if turn.answered else "")
        lines.append(f"{turn.name}{label}:\n{turn.text.strip()}")
    return "\n\n".join(lines)


def display_names(db: Database, team_id: str) -> dict[str, str]:
    """``user_id → display name`` (display name, else real name, else user name)."""
    if not db["users"].exists():
        return {}
    return {
        row["id"]: row["display_name"] or row["real_name"] or row["name"] or row["id"]
        for row in db.query(
            "select id, name, real_name, display_name from users where team_id = ?", [team_id]
        )
    }


def channel_names(db: Database, team_id: str) -> dict[str, str]:
    """``channel_id → name``."""
    return {r["id"]: r["name"] or r["id"]
            for r in db.query("select id, name from channels where team_id = ?", [team_id])}


def is_content(row: dict) -> bool:
    """A message worth reading: not deleted, not a bot, not a join/leave notice, not empty."""
    return (
        not row.get("deleted")
        and not row.get("bot_id")
        and (row.get("subtype") or "") not in SKIP_SUBTYPES
        and bool((row.get("text") or "").strip())
    )


def _answered(row: dict, answered_reaction: str) -> bool:
    if row.get("answered"):
        return True
    reactions = loads(row.get("reactions"), []) or []
    return any(isinstance(r, dict) and r.get("name") == answered_reaction for r in reactions)


def thread_transcript(db: Database, team_id: str, channel_id: str, thread_ts: str, *,
                      answered_reaction: str = "white_check_mark",
                      names: dict[str, str] | None = None,
                      channels: dict[str, str] | None = None) -> Transcript:
    """Load one thread (root first) and render it; deleted and bot messages are left out."""
    names = display_names(db, team_id) if names is None else names
    channels = channel_names(db, team_id) if channels is None else channels
    rows = list(db.query(
        "select * from messages where team_id = ? and channel_id = ? and (ts = ? or thread_ts = ?) "
        "order by cast(ts as real)",
        [team_id, channel_id, thread_ts, thread_ts],
    ))
    return build_transcript(rows, channel_id, thread_ts, names=names, channels=channels,
                            answered_reaction=answered_reaction)


def build_transcript(rows: list[dict], channel_id: str, thread_ts: str, *, names: dict[str, str],
                     channels: dict[str, str], answered_reaction: str = "white_check_mark") -> Transcript:
    """A transcript from the thread's message rows (any order)."""
    rows = sorted(rows, key=lambda r: float(r["ts"]))
    turns = [
        Turn(
            ts=row["ts"],
            user_id=row.get("user_id") or "",
            name=names.get(row.get("user_id") or "", row.get("user_id") or "someone"),
            text=render_text(row["text"], names, channels),
            answered=_answered(row, answered_reaction) and row["ts"] != thread_ts,
        )
        for row in rows
        if is_content(row)
    ]
    # The root must come first even when it was deleted: a thread without its question is no thread.
    if turns and turns[0].ts != thread_ts:
        turns = []
    return Transcript(channel_id, thread_ts, turns)
