"""The bot's answer pipeline on the acceptance set, without the training run: the ``bot-base``
system of training/evaluate.py (and ``bot`` with ``--adapter``). Last line: JSON.

    python bench/bot_eval.py [--adapter DIR] [--max-new-tokens 96]

Store: the 60 acceptance pairs of the DataTalksClub FAQ (bench/faq_store.py) as approved pairs.
Questions: the 60 rephrasings written for them (tests/training/data/faq-rephrasings.jsonl, the
references are the FAQ answers) and the 20 out-of-domain questions (ood-questions.jsonl). The
pipeline decides each one with the default thresholds; only generated answers call the model
(greedy, in-process). The verified and abstained ones do not depend on the model at all, so this
measures most of what the 20-minute acceptance run measures for the bot, in a fraction of the time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.faq_store import OOD, REPHRASINGS, acceptance_pairs, load_store, read_jsonl  # noqa: E402

TEAM = "T0BOT"
SYSTEM = "You are the DataTalksClub course assistant. Answer briefly and precisely."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", help="a trained LoRA adapter folder: also score the bot system with it")
    parser.add_argument("--model", help="base model folder (default: the embedded SmolLM2)")
    parser.add_argument("--models-dir", default=str(Path.home() / ".threadtune" / "models"))
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--out", help="also write the whole report (answers, checks) to this JSON file")
    args = parser.parse_args()
    from curation.answer_facts import in_approved
    from curation.retrieval import top_pairs
    from curation.store import connect
    from serving.models import resolve
    from training.evaluate import EvalItem, evaluate, markdown_table

    pairs = acceptance_pairs(60)
    by_id = {p["id"]: p for p in pairs}
    db = connect(Path(tempfile.mkdtemp(prefix="tt-bot-")) / "threadtune.db")
    load_store(db, TEAM, pairs)
    items = [EvalItem(q["question"], by_id[q["source_id"]]["answer"]) for q in read_jsonl(REPHRASINGS)]
    ood = [q["question"] for q in read_jsonl(OOD)]
    base = args.model or str(resolve("embedded", Path(args.models_dir)).path)
    systems = ("bot-base", "bot") if args.adapter else ("bot-base",)
    t0 = time.monotonic()
    report = evaluate(items, base_model=base, adapter_path=args.adapter, system_prompt=SYSTEM,
                      retrieve=lambda q: top_pairs(db, TEAM, q, 3), max_new_tokens=args.max_new_tokens,
                      systems=systems, ood=ood, known=lambda terms: in_approved(db, TEAM, terms))
    seconds = time.monotonic() - t0
    print(markdown_table(report))
    checked = report.get("checked", {})
    held = {s: sum(bool(v["held_back"]) for v in c.values()) for s, c in checked.items()}
    emptied = {s: sum(v["mode"] == "abstain" for v in c.values()) for s, c in checked.items()}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({"bench": "bot-eval", "pairs": len(pairs), "questions": len(items), "ood": len(ood),
                      "systems": report["systems"], "generated_with_held_back_facts": held,
                      "generated_then_abstained": emptied, "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
