"""The one answer prompt: what the bot, `threadtune ask`, the demo and `threadtune eval` send to the
model for a question. Pure; no store, no Slack.

The system message is the workspace's persona prompt followed by the retrieved approved pairs; then
the thread so far (newest turns kept, within a character budget) and the question.
"""

from __future__ import annotations

from typing import Any

#: The header above the retrieved pairs in the system message.
RETRIEVAL_HEADER = "Approved answers from the team (use them when they apply):"
HISTORY_TURNS = 10
HISTORY_CHARS = 4000
PAIR_CHARS = 1500


def system_message(system_prompt: str | None, pairs: list[dict[str, Any]]) -> str:
    """The persona prompt, then the approved pairs as ``Q: … / A: …`` blocks under one header."""
    content = (system_prompt or "").strip()
    if pairs:
        shots = "\n\n".join(f"Q: {p['question'][:PAIR_CHARS]}\nA: {p['answer'][:PAIR_CHARS]}" for p in pairs)
        content = (content + "\n\n" if content else "") + f"{RETRIEVAL_HEADER}\n\n{shots}"
    return content


def recent_history(history: list[dict[str, str]]) -> list[dict[str, str]]:
    """The last HISTORY_TURNS turns, newest kept first, within HISTORY_CHARS characters."""
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
    return kept


def build_messages(system_prompt: str | None, pairs: list[dict[str, Any]], question: str,
                   history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The chat for ``question``: system message (persona + pairs; left out when both are empty),
    the thread so far, the question. Neighbouring turns of one role are merged, because chat
    templates want user and assistant to alternate, and a leading assistant turn is dropped."""
    merged: list[dict[str, str]] = []
    for turn in recent_history(history or []) + [{"role": "user", "content": question}]:
        if merged and merged[-1]["role"] == turn["role"]:
            merged[-1] = {"role": turn["role"], "content": merged[-1]["content"] + "\n" + turn["content"]}
        else:
            merged.append(turn)
    if merged and merged[0]["role"] == "assistant":
        merged.pop(0)
    system = system_message(system_prompt, pairs)
    return ([{"role": "system", "content": system}] if system else []) + merged
