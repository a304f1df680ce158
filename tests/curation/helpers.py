"""Seed the store with threads the way the collect part stores them (one row per message)."""

from __future__ import annotations

from typing import Any

from curation.store import dumps, now

TEAM = "T0FAKE"


def add_user(db, user_id: str, name: str, team_id: str = TEAM) -> None:
    db["users"].upsert({"team_id": team_id, "id": user_id, "name": name.lower(), "real_name": name,
                        "display_name": name, "is_bot": 0, "deleted": 0, "updated_at": now()},
                       pk=("team_id", "id"))


def add_thread(db, channel_id: str, root_ts: str, root: tuple[str, str],
               replies: list[tuple[str, str] | tuple[str, str, dict[str, Any]]],
               team_id: str = TEAM) -> str:
    """A root message ``(user, text)`` and replies ``(user, text[, extra columns])``; returns root ts."""
    at = now()
    # a watched public channel, as capture and import store it (a source in an unknown channel
    # counts as private: curation.visibility)
    db.execute("insert or ignore into channels (team_id, id, name, watched, is_private, is_im, "
               "created_at) values (?, ?, ?, 1, 0, 0, ?)", [team_id, channel_id, channel_id, at])
    base = {"team_id": team_id, "channel_id": channel_id, "source": "event", "created_at": at,
            "updated_at": at, "deleted": 0, "answered": 0}
    db["messages"].upsert({**base, "ts": root_ts, "thread_ts": root_ts, "user_id": root[0],
                           "text": root[1], "reply_count": len(replies)},
                          pk=("team_id", "channel_id", "ts"))
    whole, frac = root_ts.split(".")
    for i, reply in enumerate(replies, start=1):
        extra = dict(reply[2]) if len(reply) > 2 else {}
        if "reactions" in extra and not isinstance(extra["reactions"], str):
            extra["reactions"] = dumps(extra["reactions"])
        db["messages"].upsert({**base, "ts": f"{int(whole) + i}.{frac}", "thread_ts": root_ts,
                               "user_id": reply[0], "text": reply[1], **extra},
                              pk=("team_id", "channel_id", "ts"))
    return root_ts


def vpn_thread(db, channel_id: str = "C0HELP", root_ts: str = "1700000100.000100") -> str:
    """A solved support thread with a mention, a link, a code block and an answered reply."""
    add_user(db, "U1", "Alice")
    add_user(db, "U2", "Bob")
    add_user(db, "U3", "Carol")
    return add_thread(db, channel_id, root_ts, ("U1", "How do I reset my VPN password? <@U2> any idea?"), [
        ("U2", "Not sure, maybe ask IT"),
        ("U3", "Go to <https://vpn.example.com/reset|the reset page> and run\n```vpnctl reset --user alice```\n"
               "It takes 15 minutes to sync.", {"answered": 1}),
        ("U1", "thanks!"),
    ])
