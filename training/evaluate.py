"""Evaluation: systems on the same held-out questions, scored the same way.

- ``base``: the base model with the team's system prompt;
- ``base+retrieval``: the same, with the top-3 approved pairs (FTS5) in the prompt, i.e. prompting;
- ``tuned``: base + the LoRA adapter;
- ``tuned+retrieval``: both;
- ``bot``: the answer pipeline exactly as the bot runs it with the tuned model (curation's
  ``answer_modes.decide`` on the retrieved pairs: an approved answer verbatim, the model's answer
  from the same prompt as the bot's, or an abstention); ``bot-base`` the same with the base model.

Every prompt comes from ``curation.answer_prompt.build_messages``, the bot's own builder. The bot
systems are scored over the questions they answer (token F1, ROUGE-L, fact recall), with the share
of each mode, the wrong-fact rate (answers holding a number, URL or command found in neither the
reference nor any approved pair) and, given out-of-domain questions, the share abstained on.

One model is loaded; the base systems run with the adapter disabled. Generation is greedy and
batched (left padding) with transformers in-process (or, given ``served``, through a vLLM server
serving the adapter unmerged: ``training/eval_server.py``), with no repetition penalty: the bot's answers
are greedy (temperature 0) and unpenalised too, so the scores are of what users would read.
``latency_s`` is the wall time of a batch divided by its size: the cost of one answer when answers
are batched.
Outputs: a report dict (the ``--json`` schema), a Markdown table and a PNG bar chart.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from curation.answer_calibration import curve, pick
from curation.answer_match import signals
from curation.answer_modes import (ABSTAIN, GENERATED, MODES, Decision, Thresholds, answer_text, check_generated,
                                   decide, settle)
from curation.answer_prompt import build_messages
from training.errors import DatasetError
from training.eval_server import Served, served_generate
from training.metrics import fact_recall, mean, normalize, rouge_l, token_f1, wrong_facts

SYSTEMS = ("base", "base+retrieval", "bot-base", "tuned", "tuned+retrieval", "bot")
BOT_SYSTEMS = ("bot-base", "bot")
METRICS = ("token_f1", "rouge_l", "fact_recall", "latency_s")
BOT_METRICS = ("verified", "generated", "closest", "abstain", "wrong_fact_rate", "answered", "ood_abstained")


@dataclass(frozen=True)
class EvalItem:
    """One held-out question and its reference answer."""

    question: str
    reference: str


def read_rows(path: Path, parse: Callable[[Any], Any], *, what: str, noun: str, shape: str) -> list[Any]:
    """JSONL rows of ``path``, each through ``parse`` (which raises on a row of the wrong shape);
    errors name the file and the bad lines, and show the ``shape`` a row must have."""
    if not path.is_file():
        raise DatasetError(f"{path}: {what} not found")
    rows, bad = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(parse(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError):
            bad.append(n)
    if bad:
        raise DatasetError(f"{path}: lines {', '.join(map(str, bad[:10]))} are not {shape} JSON objects; "
                           "fix or remove them")
    if not rows:
        raise DatasetError(f"{path}: no {noun}; add {shape} lines")
    return rows


def _eval_item(row: Any) -> EvalItem:
    question, reference = row["question"], row.get("answer", row.get("reference"))
    if not (isinstance(question, str) and isinstance(reference, str) and question.strip() and reference.strip()):
        raise ValueError(row)
    return EvalItem(question.strip(), reference.strip())


def _question(row: Any) -> str:
    question = row["question"]
    if not isinstance(question, str) or not question.strip():
        raise ValueError(row)
    return question.strip()


def read_eval_file(path: Path) -> list[EvalItem]:
    """``{question, answer}`` (or ``reference``) JSONL rows; errors name the file and line."""
    return read_rows(path, _eval_item, what="eval file", noun="eval rows", shape='{"question": …, "answer": …}')


def read_ood_file(path: Path) -> list[str]:
    """Out-of-domain questions: JSONL rows with a ``question`` (an answer, if any, is ignored)."""
    return read_rows(path, _question, what="out-of-domain question file", noun="questions",
                     shape='{"question": …}')


def split_key(items: list[EvalItem], dataset_id: str | None = None) -> str:
    """Names the eval split, so that two models are only compared on the same questions."""
    if dataset_id:
        return f"dataset:{dataset_id}"
    digest = hashlib.sha256(json.dumps([[i.question, i.reference] for i in items]).encode()).hexdigest()
    return f"file:{digest[:12]}"


def generate(model: Any, tokenizer: Any, chats: list[list[dict[str, str]]], *, max_new_tokens: int,
             batch_size: int, max_prompt_tokens: int = 1536) -> list[tuple[str, float]]:
    """Greedy answers for ``chats`` in batches; each with its per-answer share of the batch time."""
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out: list[tuple[str, float]] = []
    for start in range(0, len(chats), batch_size):
        batch = chats[start:start + batch_size]
        texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in batch]
        enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                        max_length=max_prompt_tokens, add_special_tokens=False)
        t0 = time.perf_counter()
        with torch.inference_mode():
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        share = (time.perf_counter() - t0) / len(batch)
        for row in ids[:, enc["input_ids"].shape[1]:]:
            out.append((tokenizer.decode(row, skip_special_tokens=True).strip(), share))
    return out


def score(answers: list[tuple[str, float]], items: list[EvalItem]) -> dict[str, float | None]:
    """Mean token F1, ROUGE-L, key-fact recall and latency of one system's answers."""
    result = {
        "token_f1": mean([token_f1(a, i.reference) for (a, _), i in zip(answers, items)]),
        "rouge_l": mean([rouge_l(a, i.reference) for (a, _), i in zip(answers, items)]),
        "fact_recall": mean([fact_recall(a, i.reference) for (a, _), i in zip(answers, items)]),
        "latency_s": mean([s for _, s in answers]),
    }
    return {k: round(v, 4) if v is not None else None for k, v in result.items()}


def chats_for(questions: list[str], system_prompt: str | None,
              contexts: dict[str, list[dict[str, Any]]]) -> list[list[dict[str, str]]]:
    """The chats the bot would send for ``questions`` with their retrieved pairs (none: no pairs)."""
    return [build_messages(system_prompt, contexts.get(q, []), q) for q in questions]


def uses_adapter(system: str) -> bool:
    """Whether ``system`` answers with the tuned model."""
    return system.startswith("tuned") or system == "bot"


def decisions(items: list[EvalItem], contexts: dict[str, list[dict[str, Any]]],
              thresholds: Thresholds) -> list[Decision]:
    """The pipeline's decision per question, as the bot makes it."""
    return [decide(i.question, contexts.get(i.question, []), thresholds) for i in items]


def score_bot(texts: list[str], latencies: list[float], modes: list[str], items: list[EvalItem],
              n_ood: int, known: Callable[[list[str]], set[str]] | None) -> dict[str, float | None]:
    """Scores of a bot system: in-domain items first, then ``n_ood`` out-of-domain questions."""
    n_in = len(items)
    answered = [k for k in range(n_in) if modes[k] != ABSTAIN]
    result: dict[str, float | None] = {
        "token_f1": mean([token_f1(texts[k], items[k].reference) for k in answered]),
        "rouge_l": mean([rouge_l(texts[k], items[k].reference) for k in answered]),
        "fact_recall": mean([fact_recall(texts[k], items[k].reference) for k in answered]),
        "latency_s": mean(latencies[:n_in]),
        **{m: sum(x == m for x in modes[:n_in]) / n_in for m in MODES},
        "wrong_fact_rate": (sum(bool(wrong_facts(texts[k], items[k].reference, known)) for k in answered)
                            / len(answered)) if answered else None,
        "answered": len(answered) / n_in,
        "ood_abstained": (sum(m == ABSTAIN for m in modes[n_in:]) / n_ood) if n_ood else None,
    }
    return {k: round(v, 4) if v is not None else None for k, v in result.items()}


def calibration(items: list[EvalItem], ood: list[str], contexts: dict[str, list[dict[str, Any]]],
                thresholds: Thresholds) -> dict[str, Any]:
    """The threshold curve on this eval: best-pair score per question, labelled right when that
    pair's answer is the reference, unanswerable for out-of-domain questions."""
    scored: list[tuple[float, float, bool | None]] = []
    for i in items:
        pairs = contexts.get(i.question, [])
        ok = bool(pairs) and normalize(pairs[0]["answer"]) == normalize(i.reference)
        scored.append((*signals(i.question, pairs), ok))
    for q in ood:
        scored.append((*signals(q, contexts.get(q, [])), None))
    points = curve(scored)
    verify, abstain = pick(points)
    return {"settings": {"verify": thresholds.verify, "abstain": thresholds.abstain},
            "suggested": {"verify": verify, "abstain": abstain},
            "points": [vars(p) for p in points]}


def evaluate(items: list[EvalItem], *, base_model: str, adapter_path: str | None,
             system_prompt: str | None, retrieve: Callable[[str], list[dict[str, Any]]],
             max_new_tokens: int = 128, batch_size: int = 8, systems: tuple[str, ...] = SYSTEMS,
             thresholds: Thresholds | None = None, ood: list[str] | None = None,
             known: Callable[[list[str]], set[str]] | None = None,
             progress: Callable[[str, int, int], None] | None = None,
             served: Served | None = None) -> dict[str, Any]:
    """Score ``systems`` on ``items``; returns ``{"systems": {name: metrics}, "examples": [...], …}``.

    ``retrieve(question)`` returns the approved pairs for the "+retrieval" and bot systems (see
    ``curation.retrieval.top_pairs``); tuned systems need ``adapter_path``. ``ood`` are questions
    the data cannot answer (bot systems only); ``known(terms)`` returns the terms that some approved
    pair holds (the wrong-fact rate uses it). A bot system's generated answers go through the
    bot's grounding check (``curation.answer_modes.check_generated``) as users would read them.
    ``served``: answers come from that server (vLLM: the adapter unmerged, as users get it) instead
    of transformers in-process.
    """
    if not items:
        raise DatasetError("nothing to evaluate: the eval split is empty; add variants or use --eval-file")
    thresholds = thresholds or Thresholds()
    ood = ood or []
    if not adapter_path and any(uses_adapter(s) for s in systems):
        raise DatasetError("the tuned systems need an adapter; pass a trained model version")
    if served is None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(adapter_path or base_model)
        model = AutoModelForCausalLM.from_pretrained(base_model)
        model.eval()
    merged = False
    systems = tuple(sorted(systems, key=uses_adapter))  # base ones first
    needs_pairs = any("+" in s or s in BOT_SYSTEMS for s in systems)
    asked = [i.question for i in items] + list(ood)
    contexts = {q: retrieve(q) for q in asked} if needs_pairs else {}
    plain = chats_for([i.question for i in items], system_prompt, {})
    helped = chats_for([i.question for i in items], system_prompt, contexts)
    bot_items = items + [EvalItem(q, "") for q in ood]
    plan = decisions(bot_items, contexts, thresholds)
    report: dict[str, Any] = {"systems": {}, "n": len(items), "n_ood": len(ood), "examples": [],
                              "settings": {"max_new_tokens": max_new_tokens, "batch_size": batch_size,
                                           "retrieval_k": max((len(v) for v in contexts.values()), default=0),
                                           "verify_score": thresholds.verify,
                                           "abstain_score": thresholds.abstain}}
    if contexts:
        report["calibration"] = calibration(items, ood, contexts, thresholds)
    answers: dict[str, list[tuple[str, float]]] = {}
    report["modes"] = [d.mode for d in plan]

    def answer(chats: list[list[dict[str, str]]], tuned: bool) -> list[tuple[str, float]]:
        if served is not None:
            return served_generate(served, chats, tuned=tuned, max_new_tokens=max_new_tokens,
                                   concurrency=batch_size)
        return generate(model, tokenizer, chats, max_new_tokens=max_new_tokens, batch_size=batch_size)

    for n, system in enumerate(systems):
        if progress:
            progress(system, n, len(systems))
        if uses_adapter(system) and not merged and served is None:
            # Merge the LoRA weights once the base systems are done: generating through unmerged
            # all-linear adapters costs about twice the time for the same answers.
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_path).merge_and_unload()
            model.eval()
            merged = True
        if system in BOT_SYSTEMS:
            todo = [k for k, d in enumerate(plan) if d.mode == GENERATED]
            chats = chats_for([bot_items[k].question for k in todo], system_prompt, contexts)
            written = dict(zip(todo, answer(chats, uses_adapter(system))))
            checked = {k: check_generated(text, bot_items[k].question, contexts.get(bot_items[k].question, []))
                       for k, (text, _) in written.items()}
            final = [settle(d, checked[k]) if k in checked else d for k, d in enumerate(plan)]
            modes = [d.mode for d in final]
            report.setdefault("final_modes", {})[system] = modes
            out = [(answer_text(d, checked[k].text if k in checked else ""), written.get(k, ("", 0.0))[1])
                   for k, d in enumerate(final)]
            answers[system] = out
            report["systems"][system] = score_bot([t for t, _ in out], [x for _, x in out],
                                                  modes, items, len(ood), known)
            report.setdefault("checked", {})[system] = {
                str(k): {"written": written[k][0], "held_back": c.held_back, "flags": c.flags,
                         "mode": c.mode} for k, c in checked.items()}
            continue
        chats = helped if system.endswith("+retrieval") else plain
        answers[system] = answer(chats, uses_adapter(system))
        report["systems"][system] = score(answers[system], items)
    finals = report.get("final_modes", {})
    for k, item in enumerate(items[:5]):
        # the mode each bot system answered in (a generated answer can end as closest or abstain);
        # "mode" is the bot's, else the decision before generation
        modes = {s: m[k] for s, m in finals.items()}
        report["examples"].append({"question": item.question, "reference": item.reference,
                                   "mode": modes.get("bot", plan[k].mode), "modes": modes,
                                   **{s: answers[s][k][0] for s in systems}})
    if progress:
        progress("done", len(systems), len(systems))
    return report


def markdown_table(report: dict[str, Any]) -> str:
    """The report's systems as a Markdown table (bot systems: over the questions they answer)."""
    bots = [n for n in report["systems"] if n in BOT_SYSTEMS]
    head = "| system | token F1 | ROUGE-L | fact recall | latency (s) |"
    rule = "|---|---:|---:|---:|---:|"
    if bots:
        head += " verified | generated | closest | abstain | wrong facts | OOD abstained |"
        rule += "---:|---:|---:|---:|---:|---:|"
    lines = [head, rule]
    for name, m in report["systems"].items():
        cells = [f"{m[k]:.3f}" if m.get(k) is not None else "n/a" for k in METRICS]
        if bots:
            cells += [f"{m[k]:.0%}" if m.get(k) is not None else "—"
                      for k in ("verified", "generated", "closest", "abstain", "wrong_fact_rate", "ood_abstained")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibration_table(report: dict[str, Any]) -> str | None:
    """The threshold curve of this eval as Markdown, the settings' and the suggested rows marked."""
    from curation.answer_calibration import CurvePoint, table

    cal = report.get("calibration")
    if not cal:
        return None
    points = [CurvePoint(**p) for p in cal["points"]]
    marks = {f"setting {k}": v for k, v in cal["settings"].items()}
    marks.update({f"suggested {k}": v for k, v in cal["suggested"].items()})
    return table(points, marks)


def bar_chart(report: dict[str, Any], path: Path, title: str = "") -> Path:
    """A grouped bar chart (PNG) of token F1, ROUGE-L and fact recall per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["systems"])
    metrics = ("token_f1", "rouge_l", "fact_recall")
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    width = 0.8 / len(metrics)
    for k, metric in enumerate(metrics):
        values = [report["systems"][s].get(metric) or 0.0 for s in names]
        ax.bar([x + k * width for x in range(len(names))], values, width, label=metric.replace("_", " "))
    ax.set_xticks([x + width for x in range(len(names))], names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(title or f"eval on {report.get('split', '')} (n={report.get('n')})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
