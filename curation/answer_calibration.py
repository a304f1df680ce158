"""Calibrating the answer thresholds: pure functions over scored questions.

Each question is scored by the match of its best retrieved pair and by the evidence that the store
can answer it (``curation.answer_match``), and labelled: ``True`` when that pair is the one that
answers it, ``False`` when another pair does (the question is answerable, retrieval missed),
``None`` when no pair answers it (out of domain).

- the *verify* threshold (on the match) is the lowest at which (and above which) answers given
  verbatim are the right pair at least ``precision`` of the time (unanswerable questions above it
  count as wrong);
- the *abstain* threshold (on the evidence) is the lowest (not above verify) at which at least
  ``ood`` of the unanswerable questions are abstained on; between the two, the model writes the
  answer.
"""

from __future__ import annotations

from dataclasses import dataclass

GRID = tuple(round(0.30 + 0.02 * i, 2) for i in range(31))  # 0.30 … 0.90
PRECISION = 0.90
#: The goal is 80% of out-of-domain questions abstained on; calibrate with a margin.
OOD = 0.85


@dataclass(frozen=True)
class CurvePoint:
    """The outcome of one threshold on the scored questions."""

    threshold: float
    verified_share: float  # of answerable questions, answered verbatim at this match threshold
    verified_precision: float | None  # share of verbatim answers that are the right pair
    answered_share: float  # of answerable questions, not abstained at this evidence threshold
    ood_abstained: float | None  # of out-of-domain questions, abstained at this evidence threshold


def curve(scored: list[tuple[float, float, bool | None]], grid: tuple[float, ...] = GRID) -> list[CurvePoint]:
    """One point per threshold of ``grid``; ``scored`` holds ``(match, evidence, label)``."""
    answerable = [(m, e, ok) for m, e, ok in scored if ok is not None]
    ood = [e for _, e, ok in scored if ok is None]
    points = []
    for t in grid:
        above = [ok for m, _, ok in scored if m >= t]
        right = sum(1 for ok in above if ok is True)
        points.append(CurvePoint(
            threshold=t,
            verified_share=round(sum(1 for m, _, ok in answerable if m >= t and ok) / len(answerable), 4)
            if answerable else 0.0,
            verified_precision=round(right / len(above), 4) if above else None,
            answered_share=round(sum(1 for _, e, _ in answerable if e >= t) / len(answerable), 4)
            if answerable else 0.0,
            ood_abstained=round(sum(1 for e in ood if e < t) / len(ood), 4) if ood else None,
        ))
    return points


def pick(points: list[CurvePoint], *, precision: float = PRECISION, ood: float = OOD) -> tuple[float, float]:
    """``(verify, abstain)`` thresholds from a curve (see the module docstring). Without a point
    reaching ``precision`` (``ood``), verify (abstain) is the top of the grid; abstain never
    exceeds verify (the settings require it)."""
    verify = next((p.threshold for p in points if p.verified_precision is not None
                   and p.verified_precision >= precision
                   and all(q.verified_precision is None or q.verified_precision >= precision
                           for q in points if q.threshold >= p.threshold)), points[-1].threshold)
    abstain = next((p.threshold for p in points if p.ood_abstained is not None and p.ood_abstained >= ood),
                   points[-1].threshold)
    return verify, min(abstain, verify)


def table(points: list[CurvePoint], marks: dict[str, float] | None = None) -> str:
    """The curve as a Markdown table; ``marks`` (``{"verify": 0.62, …}``) label their rows."""
    marks = marks or {}
    lines = ["| threshold | verified share (match) | verified precision | answered share (evidence) | "
             "OOD abstained | |",
             "|---:|---:|---:|---:|---:|---|"]

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:.0%}"

    for p in points:
        label = ", ".join(name for name, t in marks.items() if abs(t - p.threshold) < 1e-9)
        lines.append(f"| {p.threshold:.2f} | {pct(p.verified_share)} | {pct(p.verified_precision)} | "
                     f"{pct(p.answered_share)} | {pct(p.ood_abstained)} | {label} |")
    return "\n".join(lines)
