"""What an answer is made of, shared by the bot and `threadtune ask`: the live model version, the
workspace's system prompt, the retrieved approved pairs with their permalinks, the verified match,
and the chat messages sent to the model. No Slack calls here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from curation.model_versions import live_model as read_live_model
from curation.retrieval import top_pairs

#: token_set_ratio at or above which a question "matches an approved pair closely".
VERIFIED_SCORE = 90.0
HISTORY_TURNS = 10
HISTORY_CHARS = 4000
PAIR_CHARS = 1500


@dataclass(frozen=True)
class LiveModelRow:
    """The ``models`` row with status 'live' (None fields: no live model, serve the base)."""

    name: str | None
    base_model: str | None
    adapter_path: str | None

    @property
    def version(self) -> str:
        """What the footer and the answers table call it."""
        return self.name or "base"


@dataclass
class Prepared:
    """An answer ready to be generated."""

    messages: list[dict[str, str]]
    pairs: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    verified: bool = False
    verified_pair: dict[str, Any] | None = None


def live_model(db: Any, team_id: str) -> LiveModelRow:
    """The live model of ``team_id`` read from the store (the training registry writes it)."""
    row = read_live_model(db, team_id)
    return LiveModelRow(row["name"], row["base_model"], row["adapter_path"]) if row else \
        LiveModelRow(None, None, None)


def system_prompt(db: Any, team_id: str, default: str) -> str:
    """The workspace's persona prompt (``workspaces.system_prompt``), else the settings default."""
    row = db.execute("select system_prompt from workspaces where team_id = ?", [team_id]).fetchone()
    return (row[0] if row and row[0] else default).strip()


def is_close_match(question: str, pair_question: str) -> bool:
    """Whether two questions say the same thing closely enough to badge the answer as verified."""
    a, b = question.lower().strip(" ?!."), pair_question.lower().strip(" ?!.")
    return bool(a and b) and fuzz.token_set_ratio(a, b) >= VERIFIED_SCORE and \
        fuzz.ratio(a, b) >= VERIFIED_SCORE - 20


def build_messages(system: str, history: list[dict[str, str]], pairs: list[dict[str, Any]],
                   question: str) -> list[dict[str, str]]:
    """The chat: system prompt (+ approved pairs), the thread so far (newest kept), the question."""
    content = system
    if pairs:
        lines = ["", "", "Approved answers from the team (use them when they apply):"]
        for p in pairs:
            lines.append(f"Q: {p['question'][:PAIR_CHARS]}\nA: {p['answer'][:PAIR_CHARS]}")
        content += "\n".join(lines)
    kept: list[dict[str, str]] = []
    budget = HISTORY_CHARS
    for turn in reversed(history[-HISTORY_TURNS:]):
        text = turn["content"][:budget]
        if not text:
            break
        kept.append({"role": turn["role"], "content": text})
        budget -= len(text)
        if budget <= 0:
            break
    kept.reverse()
    # Chat templates want user/assistant to alternate: merge neighbours of the same role.
    merged: list[dict[str, str]] = []
    for turn in kept + [{"role": "user", "content": question}]:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1] = {"role": turn["role"], "content": merged[-1]["content"] + "\n" + turn["content"]}
        else:
            merged.append(turn)
    if merged and merged[0]["role"] == "assistant":
        merged.pop(0)
    return [{"role": "system", "content": content}, *merged]


def pair_sources(db: Any, team_id: str, pairs: list[dict[str, Any]],
                 permalink: Callable[[str, str], str | None] | None = None) -> list[dict[str, Any]]:
    """One citation per pair: the stored permalink of its first source message, or one fetched
    with ``permalink(channel, ts)``; pairs without a Slack source (documents) are cited by title."""
    out = []
    for p in pairs:
        row = db.execute(
            "select s.permalink, s.channel_id, s.ts, d.title from candidate_sources s left join "
            "documents d on d.id = s.document_id where s.team_id = ? and s.candidate_id = ? "
            "order by s.id limit 1", [team_id, p["id"]]).fetchone()
        link = None
        if row:
            link = row[0]
            if not link and row[1] and row[2] and permalink is not None:
                try:
                    link = permalink(row[1], row[2])
                except Exception:  # a missing permalink never stops an answer
                    link = None
        out.append({"candidate_id": p["id"], "question": p["question"], "permalink": link,
                    "document": row[3] if row else None})
    return out


def prepare(db: Any, team_id: str, question: str, *, default_system_prompt: str, retrieval: bool,
            history: list[dict[str, str]] | None = None, k: int = 3,
            permalink: Callable[[str, str], str | None] | None = None) -> Prepared:
    """Retrieve, cite, check for a verified match and build the messages for ``question``."""
    pairs = top_pairs(db, team_id, question, k=k) if retrieval else []
    verified_pair = next((p for p in pairs if is_close_match(question, p["question"])), None)
    return Prepared(
        messages=build_messages(system_prompt(db, team_id, default_system_prompt), history or [],
                                pairs, question),
        pairs=pairs,
        sources=pair_sources(db, team_id, pairs, permalink),
        verified=verified_pair is not None,
        verified_pair=verified_pair,
    )
