"""The demo's model serving: a vLLM server for curation when its environment is present, and the
held-out questions asked the way `threadtune ask` does, with the live model served only when an
answer needs it. threadtune/demo.py runs the steps; this module serves for two of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from threadtune.settings import Settings


def start_vllm(s: Settings, base_model: Path) -> Any:
    """A vLLM server for the base model when ``.venv-vllm`` is present (else None)."""
    from serving.backend import LiveModel, make_backend, pick_backend

    if pick_backend(s.serving_backend, vllm_python=s.vllm_python) != "vllm":
        return None
    return make_backend("vllm", LiveModel(None, base_model), port=0, vllm_python=s.vllm_python,
                        cpu_kvcache_gib=s.vllm_cpu_kvcache_gib, log_path=s.data_dir / "serve" / "vllm.log")


def serve_and_ask(s: Settings, db: Any, team: str, model: dict[str, Any], heldout: Path, *, n: int,
                  update: Callable[..., None], max_tokens: int,
                  server: Any = None) -> tuple[list[dict[str, str]], str]:
    """Ask ``n`` held-out questions the way `threadtune ask` does (the same pipeline: an approved
    answer verbatim, the served tuned model's answer marked not verified, the closest approved
    answer quoted when nothing the model wrote was supported, or an abstention). The
    live model is served as `threadtune serve` does (vLLM when its environment is present: on a CPU
    a merged copy swapped in, on a GPU the adapter hot-loaded; else transformers serve with a merged
    copy), only when an answer needs the model. ``server``: a running vLLM to serve it on instead of
    starting one.
    Returns the answers and the backend that served them."""
    from bot.answer_prompt import prepare
    from curation.answer_modes import (CLOSEST, Thresholds, answer_text, check_generated, closest_question,
                                       held_back_note, settle)
    from serving.backend import LiveModel, make_backend, pick_backend
    from serving.client import ModelClient

    questions = [json.loads(line) for line in heldout.read_text().splitlines() if line.strip()][:n]
    thresholds = Thresholds(s.answer_verify_score, s.answer_abstain_score)
    preps = [prepare(db, team, item["question"], default_system_prompt=s.system_prompt,
                     retrieval=s.retrieval, thresholds=thresholds) for item in questions]
    written: dict[int, str] = {}
    todo = [k for k, prep in enumerate(preps) if prep.decision.needs_model]
    from serving.swap import MergedVllm

    kind = "vllm" if server is not None else pick_backend(s.serving_backend, vllm_python=s.vllm_python)
    label = "vLLM" if kind == "vllm" else "transformers serve (a merged copy)"
    if todo:
        live = LiveModel(model["name"], Path(model["base_model"]), Path(model["adapter_path"]))
        owned = server is None
        if owned:
            update(text=f"starting {kind}")
            server = make_backend(kind, live, port=0, merged_dir=s.models_dir / "merged",
                                  work_dir=s.data_dir / "serve", vllm_python=s.vllm_python,
                                  cpu_kvcache_gib=s.vllm_cpu_kvcache_gib,
                                  log_path=s.data_dir / "serve" / "vllm.log").start()
        else:
            update(text=f"swapping {model['name']} into the running vLLM" if isinstance(server, MergedVllm)
                   else f"hot-loading {model['name']} into the running vLLM")
        if kind == "vllm":
            label = ("vLLM (a merged copy, swapped in)" if isinstance(server, MergedVllm)
                     else "vLLM (the adapter, unmerged" + (")" if owned else ", hot-loaded)"))
        server.serve_model(live.name, live.base_path, live.adapter_path)
        try:
            client = ModelClient(server.base_url, server.model, timeout=s.answer_timeout_s)
            try:
                for done, k in enumerate(todo):
                    update(done, len(todo), questions[k]["question"])
                    written[k] = client.chat(preps[k].messages, max_tokens=max_tokens).text.strip()
            finally:
                client.close()
        finally:
            if owned:
                server.stop()
    out = []
    for k, (item, prep) in enumerate(zip(questions, preps)):
        mode, text, notes, cited = prep.mode, answer_text(prep.decision), [], prep.sources[:2]
        if k in written:
            checked = check_generated(written[k], item["question"], prep.pairs)
            final = settle(prep.decision, checked)
            mode, text = final.mode, answer_text(final, checked.text)
            notes = [n for n in (held_back_note(checked.held_back),) if n] + (
                [f"not in the approved answers it used: {', '.join(checked.flags)}"] if checked.flags else [])
            if final.mode == CLOSEST and final.pair is not None:
                # the model's sentences were all left out: what it wrote is not shown, so not named
                notes, cited = [f"approved for “{closest_question(final.pair)}”"], prep.sources[:1]
        out.append({"question": item["question"], "reference": item["answer"], "tuned": text,
                    "mode": mode + (f" ({'; '.join(notes)})" if notes else ""),
                    "cited": ", ".join(p.get("permalink") or f"pair #{p.get('candidate_id')}"
                                       for p in cited)})
    return out, label
