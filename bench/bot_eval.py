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


def answer_logprobs(base: str, adapter: str | None, chats: list[list[dict]], answers: list[str]) -> list[float]:
    """Mean log-probability per token of each answer given its chat: what vLLM's ``logprobs``
    return for a greedy answer, computed here in one forward pass each (transformers serve gives none)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter or base)
    model = AutoModelForCausalLM.from_pretrained(base)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.eval()
    out = []
    for chat, answer in zip(chats, answers):
        prompt = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True),
                           add_special_tokens=False).input_ids[-1536:]
        said = tokenizer(answer, add_special_tokens=False).input_ids or [tokenizer.eos_token_id]
        with torch.inference_mode():
            logits = model(torch.tensor([prompt + said])).logits[0, len(prompt) - 1:-1].float()
        picked = torch.log_softmax(logits, -1).gather(1, torch.tensor(said)[:, None])
        out.append(round(float(picked.mean()), 4))
    return out


def auc(scores: list[float], good: list[bool]) -> float | None:
    """Probability that a good answer scores above a bad one (ties count half)."""
    pos = [s for s, g in zip(scores, good) if g]
    neg = [s for s, g in zip(scores, good) if not g]
    if not pos or not neg:
        return None
    return round(sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg)), 3)


def logprob_study(report: dict, system: str, items: list, ood: list[str], contexts: dict, base: str,
                  adapter: str | None) -> dict:
    """Does the answer's log-probability tell good generated answers from bad ones better than the
    evidence that decided to generate them? Side by side on the same answers: AUC of each for
    "token F1 ≥ 0.4 and no held-back fact", and the effect of abstaining on the lowest quarter by
    each (same number of answers dropped)."""
    from curation.answer_match import signals
    from training.evaluate import chats_for
    from training.metrics import token_f1

    asked = [i.question for i in items] + ood
    refs = [i.reference for i in items] + [""] * len(ood)
    rows = []
    for k, c in report["checked"][system].items():
        k = int(k)
        if k >= len(items):
            continue  # out-of-domain questions are abstained on before generation
        q = asked[k]
        rows.append({"k": k, "written": c["written"], "f1": token_f1(c["written"], refs[k]),
                     "held": bool(c["held_back"]), "evidence": signals(q, contexts[q])[1]})
    chats = chats_for([asked[r["k"]] for r in rows], SYSTEM, contexts)
    for r, lp in zip(rows, answer_logprobs(base, adapter, chats, [r["written"] for r in rows])):
        r["logprob"] = lp
    good = [r["f1"] >= 0.4 and not r["held"] for r in rows]
    drop = max(1, len(rows) // 4)
    kept_by = {}
    for signal in ("logprob", "evidence"):
        keep = sorted(rows, key=lambda r: r[signal])[drop:]
        kept_by[signal] = {"mean_f1_kept": round(sum(r["f1"] for r in keep) / len(keep), 4),
                           "held_back_kept": sum(r["held"] for r in keep)}
    return {"generated": len(rows), "good": sum(good), "dropped": drop,
            "auc": {s: auc([r[s] for r in rows], good) for s in ("logprob", "evidence")},
            "drop_lowest_quarter": kept_by, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapter", help="a trained LoRA adapter folder: also score the bot system with it")
    parser.add_argument("--model", help="base model folder (default: the embedded SmolLM2)")
    parser.add_argument("--models-dir", default=str(Path.home() / ".threadtune" / "models"))
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--out", help="also write the whole report (answers, checks) to this JSON file")
    parser.add_argument("--systems", help="bot-base, bot or both, comma-separated (default: both with "
                        "--adapter, else bot-base)")
    parser.add_argument("--logprobs", action="store_true",
                        help="also measure the generated answers' log-probabilities as an abstain signal")
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
    systems = tuple(args.systems.split(",")) if args.systems else (("bot-base", "bot") if args.adapter
                                                                    else ("bot-base",))
    t0 = time.monotonic()
    contexts = {q: top_pairs(db, TEAM, q, 3) for q in [i.question for i in items] + ood}
    report = evaluate(items, base_model=base, adapter_path=args.adapter, system_prompt=SYSTEM,
                      retrieve=contexts.__getitem__, max_new_tokens=args.max_new_tokens,
                      systems=systems, ood=ood, known=lambda terms: in_approved(db, TEAM, terms))
    seconds = time.monotonic() - t0
    print(markdown_table(report))
    if args.logprobs:
        system = systems[-1]
        report["logprob_study"] = study = logprob_study(report, system, items, ood, contexts, base,
                                                        args.adapter if system == "bot" else None)
        print(f"log-probability as an abstain signal ({system}, {study['generated']} generated, "
              f"{study['good']} good): AUC logprob {study['auc']['logprob']} vs evidence "
              f"{study['auc']['evidence']}; dropping the lowest {study['dropped']}: "
              + json.dumps(study["drop_lowest_quarter"]))
    checked = report.get("checked", {})
    held = {s: sum(bool(v["held_back"]) for v in c.values()) for s, c in checked.items()}
    emptied = {s: sum(v["mode"] == "abstain" for v in c.values()) for s, c in checked.items()}
    quoted = {s: sum(v["mode"] == "closest" for v in c.values()) for s, c in checked.items()}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({"bench": "bot-eval", "pairs": len(pairs), "questions": len(items), "ood": len(ood),
                      "systems": report["systems"], "generated_with_held_back_facts": held,
                      "generated_then_abstained": emptied, "generated_then_quoted_closest": quoted,
                      "logprob_auc": report.get("logprob_study", {}).get("auc"),
                      "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
