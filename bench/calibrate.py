"""Calibrate the answer thresholds on held-out rephrasings; prints the curve, last line JSON.

    python bench/calibrate.py

The store holds the real course FAQ twice over: the 60 acceptance pairs, and all 876 (754 unique)
pairs. Each question of ``tests/training/data/faq-calibration.jsonl`` (40 rephrasings of pairs
outside the acceptance set, 20 unrelated questions) is asked of both stores; BM25 retrieves, and the
best pair's match score (curation/answer_match.py) is labelled right, wrong, or unanswerable (the
unrelated questions, and at 60 pairs the rephrasings whose pair is not in the store). The verify
threshold is the lowest whose verbatim answers are ≥ 95% right; the abstain threshold the highest
that still answers ≥ 90% of the answerable questions (curation/answer_calibration.py). The
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


def scored(pairs: list[dict], questions: list[dict]) -> list[tuple[float, bool | None]]:
    """``(match score of the best pair, label)`` per question against a store of ``pairs``."""
    from curation.answer_match import match_score
    from curation.retrieval import top_pairs
    from curation.store import connect

    db = connect(Path(tempfile.mkdtemp(prefix="tt-cal-")) / "threadtune.db")
    ids = load_store(db, "T0CAL", pairs)
    out: list[tuple[float, bool | None]] = []
    for q in questions:
        top = top_pairs(db, "T0CAL", q["question"], k=1)
        score = match_score(q["question"], top[0]) if top else 0.0
        want = ids.get(q.get("source_id") or "")
        out.append((score, None if want is None else bool(top and top[0]["id"] == want)))
    return out


def main() -> None:
    from curation.answer_calibration import curve, pick, table

    questions = read_jsonl(CALIBRATION)
    small, large = scored(acceptance_pairs(60), questions), scored(all_pairs(), questions)
    points = curve(small + large)
    verify, abstain = pick(points)
    print(table(points, {"verify": verify, "abstain": abstain}))
    by_size = {}
    for name, rows in (("60", small), ("all", large)):
        p = {pt.threshold: pt for pt in curve(rows)}
        by_size[name] = {"verified_share": p[verify].verified_share,
                         "verified_precision": p[verify].verified_precision,
                         "answered_share": p[abstain].answered_share, "ood_abstained": p[abstain].ood_abstained}
    print(json.dumps({"bench": "calibrate", "questions": len(questions), "verify": verify, "abstain": abstain,
                      "at_thresholds": by_size}))


if __name__ == "__main__":
    main()
