"""Dedup at scale: add 100k synthetic candidates through ``add_candidate`` (scrub, checks, dedup,
insert), and compare the indexed near-duplicate lookup with a brute-force scan, in one run.

The synthetic questions mix a few hundred topics with framing variations ("How do I …", "how can I
…", "… — how?"), so a share of them are paraphrases that must merge into variants, and a share are
near-misses (one content word more or less) that must not. Goal: 100k under 60 s here.

    python bench/dedup.py [--pairs 100000] [--sample 200]

Last line: JSON with seconds taken, the rate, the lookup speed-up over brute force, and how the
planted paraphrases and near-misses came out.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VERBS = "reset install configure enable disable export import upgrade rotate delete create rename " \
        "share sync mount restore archive unlock renew migrate".split()
THINGS = "vpn wiki printer laptop badge email calendar repo cluster bucket token license shell " \
         "kernel monitor database pipeline dashboard notebook runner cache certificate proxy".split()
EXTRAS = "password account settings permissions profile backup quota alias group key drive " \
         "plugin theme schedule region policy".split()
FRAMES = ["How do I {}?", "how can I {}", "How to {}?", "Can someone tell me how to {}?",
          "What is the way to {}?", "{} — how?"]


def phrase(rng: random.Random, topic: tuple[str, str, str, str]) -> str:
    verb, thing, extra, where = topic
    body = f"{verb} the {thing} {extra} on {where}"
    return rng.choice(FRAMES).format(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=200, help="lookups timed for the brute-force baseline")
    ap.add_argument("--batch", type=int, default=1000, help="candidates per transaction")
    args = ap.parse_args()

    from curation.candidates import add_candidate
    from curation.dedup import content_stems, find_duplicate, same_question
    from curation.store import connect, transaction

    rng = random.Random(7)
    topics = [(rng.choice(VERBS), rng.choice(THINGS), rng.choice(EXTRAS), f"{rng.choice(THINGS)}-{i % 97}")
              for i in range(args.pairs * 2)]
    planted_para = planted_miss = 0
    questions: list[tuple[str, str]] = []  # (question, kind)
    new_ids: list[int] = []  # indices of topics stored as themselves
    missed: set[tuple[str, str, str]] = set()
    for i, topic in enumerate(topics):
        if len(questions) == args.pairs:
            break
        if len(new_ids) > 10 and i % 10 == 0:  # a paraphrase of an earlier question
            questions.append((phrase(rng, topics[rng.choice(new_ids[len(new_ids) // 2:])]), "para"))
            planted_para += 1
        elif len(new_ids) > 10 and i % 10 == 5:  # a near-miss: an earlier question minus its extra word
            verb, thing, _, where = topics[rng.choice(new_ids[len(new_ids) // 2:])]
            if (verb, thing, where) in missed:  # a second identical near-miss would rightly merge
                continue
            missed.add((verb, thing, where))
            questions.append((f"How do I {verb} the {thing} on {where}?", "miss"))
            planted_miss += 1
        else:
            questions.append((phrase(rng, topic), "new"))
            new_ids.append(i)

    with tempfile.TemporaryDirectory() as tmp:
        db = connect(Path(tmp) / "bench.db")
        start = time.perf_counter()
        status_of_kind: dict[str, dict[str, int]] = {"para": {}, "miss": {}, "new": {}}
        for lo in range(0, len(questions), args.batch):
            with transaction(db):
                for j, (q, kind) in enumerate(questions[lo:lo + args.batch], start=lo):
                    added = add_candidate(db, "T1", q, f"Answer {j}: open the admin page and follow the steps.",
                                          origin="import")
                    counts = status_of_kind[kind]
                    counts[added.status] = counts.get(added.status, 0) + 1
        seconds = time.perf_counter() - start

        sample = [q for q, _ in rng.sample(questions, min(args.sample, len(questions)))]
        t = time.perf_counter()
        for q in sample:
            find_duplicate(db, "T1", q)
        index_ms = (time.perf_counter() - t) / len(sample) * 1000
        stored = [(r[0], content_stems(r[1])) for r in db.execute(
            "select id, question from candidates where status in ('pending', 'approved')")]
        brute_n = min(20, len(sample))
        t = time.perf_counter()
        for q in sample[:brute_n]:
            stems = content_stems(q)
            next((cid for cid, other in stored if same_question(stems, other)), None)
        brute_ms = (time.perf_counter() - t) / brute_n * 1000
        db.close()

    para, miss = status_of_kind["para"], status_of_kind["miss"]
    print(f"{args.pairs:,} candidates in {seconds:.1f} s ({args.pairs / seconds:,.0f}/s); "
          f"lookup {index_ms:.3f} ms indexed vs {brute_ms:.1f} ms brute force "
          f"({brute_ms / index_ms:,.0f}x)")
    print(f"planted paraphrases: {para}; planted near-misses: {miss}")
    print(json.dumps({
        "pairs": args.pairs, "seconds": round(seconds, 2), "goal_seconds": 60,
        "under_goal": seconds < 60, "pairs_per_s": round(args.pairs / seconds, 1),
        "index_lookup_ms": round(index_ms, 4), "brute_force_lookup_ms": round(brute_ms, 2),
        "lookup_speedup": round(brute_ms / index_ms, 1),
        "paraphrases_merged": round(para.get("variant", 0) / max(1, planted_para), 3),
        "near_misses_kept_apart": round(1 - miss.get("variant", 0) / max(1, planted_miss), 3),
    }))


if __name__ == "__main__":
    main()
