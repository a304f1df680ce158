"""One line of text for a row of the ``jobs`` table, shared by the terminal, the worker's Slack
status message and ``/threadtune jobs`` (pure: the bot and training both read jobs, neither imports
the other).
"""

from __future__ import annotations

from typing import Any

from curation.store import loads


def _decoded(value: Any) -> dict[str, Any]:
    """A progress/result column as a dict: rows from sqlite hold JSON text, decoded rows dicts."""
    if isinstance(value, dict):
        return value
    return loads(value, {}) if isinstance(value, str) else {}


def describe(job: dict[str, Any]) -> str:
    """``#3 train running step 5/40 loss 1.235 80 tok/s ETA 120s``; a done job ends with its result
    (a curate job with its summary: what it read and the candidates it made)."""
    text = f"#{job['id']} {job['kind']} {job['status']}"
    p, r = _decoded(job.get("progress")), _decoded(job.get("result"))
    if job["status"] == "running" and p.get("total") and job["kind"] == "curate":
        text += f" {p.get('step', 0)}/{p['total']} sources"
    elif job["status"] == "running" and p.get("total"):
        text += f" step {p.get('step', 0)}/{p['total']}"
        if p.get("loss") is not None:
            text += f" loss {p['loss']:.3f}"
        if p.get("tokens_per_s"):
            text += f" {p['tokens_per_s']:.0f} tok/s"
        if p.get("eta_s") is not None:
            text += f" ETA {int(p['eta_s'])}s"
    if job["status"] == "done" and r.get("summary"):
        text += f": {r['summary']}"
    if job["status"] == "done" and r.get("model"):
        text += f" → model {r['model']}"
    systems = r.get("systems") or {}
    if job["status"] == "done" and systems:
        text += ": token F1 " + ", ".join(
            f"{name} {m['token_f1']:.3f}" for name, m in systems.items() if m.get("token_f1") is not None)
    if job.get("error"):
        text += f": {job['error']}"
    return text
