"""What an answer is made of, read from the store for the bot, `threadtune ask` and the demo: the
live model version, the workspace's system prompt, the retrieved approved pairs with their
permalinks and approvers, the pipeline's decision (curation/answer_modes.py) and, when the model is
to write the answer, the chat messages (curation/answer_prompt.py). No Slack calls here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from curation.answer_modes import GENERATED, VERIFIED, Decision, Thresholds, decide
from curation.answer_prompt import build_messages
from curation.model_versions import live_model as read_live_model
from curation.retrieval import top_pairs
from curation.store import loads


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
    """An answer decided: verbatim, to be generated from ``messages``, or abstained."""

    decision: Decision
    messages: list[dict[str, str]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mode(self) -> str:
        """verified, generated or abstain."""
        return self.decision.mode

    @property
    def verified(self) -> bool:
        """The answer is an approved pair verbatim."""
        return self.decision.mode == VERIFIED

    @property
    def verified_pair(self) -> dict[str, Any] | None:
        """The approved pair quoted verbatim (with ``approved_by`` and ``approved_at``)."""
        return self.decision.pair


def live_model(db: Any, team_id: str) -> LiveModelRow:
    """The live model of ``team_id`` read from the store (the training registry writes it)."""
    row = read_live_model(db, team_id)
    return LiveModelRow(row["name"], row["base_model"], row["adapter_path"]) if row else \
        LiveModelRow(None, None, None)


def system_prompt(db: Any, team_id: str, default: str) -> str:
    """The workspace's persona prompt (``workspaces.system_prompt``), else the settings default."""
    row = db.execute("select system_prompt from workspaces where team_id = ?", [team_id]).fetchone()
    return (row[0] if row and row[0] else default).strip()


def approval(db: Any, team_id: str, candidate_id: int) -> tuple[list[str], str | None]:
    """Who approved a pair (user ids, in order) and when it was last changed (its approval)."""
    row = db.execute("select approvals, updated_at from candidates where team_id = ? and id = ?",
                     [team_id, candidate_id]).fetchone()
    return (list(loads(row[0], []) or []), row[1]) if row else ([], None)


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
            thresholds: Thresholds, history: list[dict[str, str]] | None = None, k: int = 3,
            permalink: Callable[[str, str], str | None] | None = None,
            visible_in: str | None = None) -> Prepared:
    """Retrieve, decide the mode, cite; build the messages only when the model is to answer.

    Without retrieval there is nothing to verify or abstain on: the model answers (generated).
    ``visible_in`` is the channel where the question was asked: retrieval, citations and the
    verified mode use only pairs that may be seen there (None: only pairs visible anywhere).
    """
    pairs = top_pairs(db, team_id, question, k=k, visible_in=visible_in) if retrieval else []
    decision = decide(question, pairs, thresholds) if retrieval else Decision(GENERATED, 0.0)
    if decision.pair is not None:
        approvers, at = approval(db, team_id, decision.pair["id"])
        decision = Decision(decision.mode, decision.score,
                            {**decision.pair, "approved_by": approvers, "approved_at": at})
    cited = [decision.pair] if decision.pair is not None else (pairs if decision.needs_model else [])
    messages = build_messages(system_prompt(db, team_id, default_system_prompt), pairs, question,
                              history or []) if decision.needs_model else []
    return Prepared(decision=decision, messages=messages, pairs=pairs,
                    sources=pair_sources(db, team_id, cited, permalink))
