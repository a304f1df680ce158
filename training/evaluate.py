"""Evaluation: four systems on the same held-out questions, scored the same way.

- ``base``: the base model with the team's system prompt;
- ``base+retrieval``: the same, with the top-3 approved pairs (FTS5) in the prompt, i.e. prompting;
- ``tuned``: base + the LoRA adapter;
- ``tuned+retrieval``: both.

One model is loaded; the base systems run with the adapter disabled. Generation is greedy and
batched (left padding) with transformers in-process, with no repetition penalty: the bot's answers
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

from training.errors import DatasetError
from training.metrics import fact_recall, mean, rouge_l, token_f1

SYSTEMS = ("base", "base+retrieval", "tuned", "tuned+retrieval")
METRICS = ("token_f1", "rouge_l", "fact_recall", "latency_s")
RETRIEVAL_HEADER = "Approved answers from the team (use them if they fit the question):"


@dataclass(frozen=True)
class EvalItem:
    """One held-out question and its reference answer."""

    question: str
    reference: str


def read_eval_file(path: Path) -> list[EvalItem]:
    """``{question, answer}`` (or ``reference``) JSONL rows; errors name the file and line."""
    if not path.is_file():
        raise DatasetError(f"{path}: eval file not found")
    items, bad = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, reference = row["question"], row.get("answer", row.get("reference"))
            if not (isinstance(question, str) and isinstance(reference, str) and question.strip()
                    and reference.strip()):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            bad.append(n)
            continue
        items.append(EvalItem(question.strip(), reference.strip()))
    if bad:
        raise DatasetError(f"{path}: lines {', '.join(map(str, bad[:10]))} are not "
                           '{"question": …, "answer": …} JSON objects; fix or remove them')
    if not items:
        raise DatasetError(f"{path}: no eval rows; add {{\"question\", \"answer\"}} lines")
    return items


def split_key(items: list[EvalItem], dataset_id: str | None = None) -> str:
    """Names the eval split, so that two models are only compared on the same questions."""
    if dataset_id:
        return f"dataset:{dataset_id}"
    digest = hashlib.sha256(json.dumps([[i.question, i.reference] for i in items]).encode()).hexdigest()
    return f"file:{digest[:12]}"


def build_messages(question: str, system_prompt: str | None, pairs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The chat for one question: the system prompt, the retrieved pairs (if any), the question."""
    system = system_prompt or ""
    if pairs:
        shots = "\n\n".join(f"Q: {p['question']}\nA: {p['answer']}" for p in pairs)
        system = (system + "\n\n" if system else "") + f"{RETRIEVAL_HEADER}\n\n{shots}"
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": question}]


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


def evaluate(items: list[EvalItem], *, base_model: str, adapter_path: str | None,
             system_prompt: str | None, retrieve: Callable[[str], list[dict[str, Any]]],
             max_new_tokens: int = 128, batch_size: int = 8, systems: tuple[str, ...] = SYSTEMS,
             progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Score ``systems`` on ``items``; returns ``{"systems": {name: metrics}, "examples": [...], …}``.

    ``retrieve(question)`` returns the approved pairs for the "+retrieval" systems (see
    ``curation.retrieval.top_pairs``); tuned systems need ``adapter_path``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not items:
        raise DatasetError("nothing to evaluate: the eval split is empty; add variants or use --eval-file")
    tokenizer = AutoTokenizer.from_pretrained(adapter_path or base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model)
    if not adapter_path and any(s.startswith("tuned") for s in systems):
        raise DatasetError("the tuned systems need an adapter; pass a trained model version")
    model.eval()
    merged = False
    systems = tuple(sorted(systems, key=lambda name: name.startswith("tuned")))  # base ones first
    contexts = {i.question: retrieve(i.question) for i in items} if any("+" in s for s in systems) else {}
    plain = [build_messages(i.question, system_prompt, []) for i in items]
    helped = [build_messages(i.question, system_prompt, contexts.get(i.question, [])) for i in items]
    report: dict[str, Any] = {"systems": {}, "n": len(items), "examples": [],
                              "settings": {"max_new_tokens": max_new_tokens, "batch_size": batch_size,
                                           "retrieval_k": max((len(v) for v in contexts.values()), default=0)}}
    answers: dict[str, list[tuple[str, float]]] = {}
    for n, system in enumerate(systems):
        if progress:
            progress(system, n, len(systems))
        chats = helped if system.endswith("+retrieval") else plain
        if system.startswith("tuned") and not merged:
            # Merge the LoRA weights once the base systems are done: generating through unmerged
            # all-linear adapters costs about twice the time for the same answers.
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_path).merge_and_unload()
            model.eval()
            merged = True
        answers[system] = generate(model, tokenizer, chats, max_new_tokens=max_new_tokens,
                                   batch_size=batch_size)
        report["systems"][system] = score(answers[system], items)
    for k, item in enumerate(items[:5]):
        report["examples"].append({"question": item.question, "reference": item.reference,
                                   **{s: answers[s][k][0] for s in systems}})
    if progress:
        progress("done", len(systems), len(systems))
    return report


def markdown_table(report: dict[str, Any]) -> str:
    """The report's systems as a Markdown table."""
    lines = ["| system | token F1 | ROUGE-L | fact recall | latency (s) |",
             "|---|---:|---:|---:|---:|"]
    for name, m in report["systems"].items():
        cells = [f"{m[k]:.3f}" if m.get(k) is not None else "n/a" for k in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
