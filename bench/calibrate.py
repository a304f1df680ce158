"""Calibrate the answer thresholds on held-out rephrasings; prints the curve, last line JSON.

    python bench/calibrate.py

The store holds the real course FAQ twice over: the 60 acceptance pairs, and all 876 (754 unique)
pairs. Each question of ``tests/training/data/faq-calibration.jsonl`` (76 rephrasings of pairs
outside the acceptance set, 36 unrelated questions) is asked of both stores; BM25 retrieves, and the
best pair gets its match score and evidence (curation/answer_match.py), labelled right, wrong, or
unanswerable (the unrelated questions, and at 60 pairs the rephrasings whose pair is not in the
store). The verify threshold is the lowest whose verbatim answers are ≥ 90% right; the abstain threshold the lowest
that abstains on ≥ 85% of the unanswerable questions (curation/answer_calibration.py). The
acceptance rephrasings and the out-of-domain eval file are not used here.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.faq_store import CALIBRATION, acceptance_pairs, all_pairs, load_store, read_jsonl  # noqa: E402


def retrieved(pairs: list[dict], questions: list[dict]) -> list[tuple[str, list[dict], bool | None]]:
    """``(question, its top pair or none, label)`` per question against a store of ``pairs``."""
    from curation.retrieval import top_pairs
    from curation.store import connect

    db = connect(Path(tempfile.mkdtemp(prefix="tt-cal-")) / "threadtune.db")
    ids = load_store(db, "T0CAL", pairs)
    out = []
    for q in questions:
        top = top_pairs(db, "T0CAL", q["question"], k=1)
        want = ids.get(q.get("source_id") or "")
        out.append((q["question"], top, None if want is None else bool(top and top[0]["id"] == want)))
    return out


def scored(rows: list[tuple[str, list[dict], bool | None]]) -> list[tuple[float, float, bool | None]]:
    """``(match, evidence, label)`` per question."""
    from curation.answer_match import signals

    return [(*signals(q, top), ok) for q, top, ok in rows]


def main() -> None:
    from curation.answer_calibration import curve, pick, table

    questions = read_jsonl(CALIBRATION)
    small, large = retrieved(acceptance_pairs(60), questions), retrieved(all_pairs(), questions)
    points = curve(scored(small + large))
    verify, abstain = pick(points)
    print(table(points, {"verify": verify, "abstain": abstain}))
    at_size = {}
    for name, rows in (("60", small), ("all", large)):
        p = {pt.threshold: pt for pt in curve(scored(rows))}
        at_size[name] = {"verified_share": p[verify].verified_share,
                         "verified_precision": p[verify].verified_precision,
                         "answered_share": p[abstain].answered_share, "ood_abstained": p[abstain].ood_abstained}
    print(json.dumps({"bench": "calibrate", "questions": len(questions), "verify": verify, "abstain": abstain, "at_thresholds": at_size}))


if __name__ == "__main__":
    main()
