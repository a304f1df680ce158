"""What the CLI, the worker and the demo call: validate and queue a training run, train a job's
run folder, and evaluate a registered model. Everything is checked before a model loads.

In-process use (the demo)::

    plan = plan_train(db, team, dataset="latest", preset="cpu-small", overrides={},
                      base_model=settings.base_model, models_dir=settings.models_dir)
    job = train_now(db, team, plan, data_dir=settings.data_dir, models_dir=settings.models_dir,
                    notifier=TerminalNotifier())                   # a child process; job["result"]["model"]
    report = evaluate_model(db, team, job["result"]["model"], out_dir=settings.data_dir / "reports")
    registry.promote(db, team, job["result"]["model"])             # eval-gated; RegistryError if worse
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from curation.dataset_lookup import resolve_dataset
from curation.datasets import refuse_superseded
from curation.errors import ConfigError, CurationError
from curation.model_versions import get_model
from training import registry
from training.augment import augment_rows
from training.config import TrainConfig, resolve_config
from training.data import load_dataset_messages, pair_of
from training.errors import DatasetError, TrainingError
from training.evaluate import (EvalItem, bar_chart, calibration_table, evaluate, markdown_table, read_eval_file,
                               read_ood_file, split_key)


@dataclass
class TrainPlan:
    """A validated training request: what the job args hold, plus what was loaded to check it."""

    dataset: dict[str, Any]
    preset: str
    overrides: dict[str, Any]
    config: TrainConfig
    base_model_spec: str
    base_model_path: str
    train_rows: list[dict[str, Any]] = field(repr=False, default_factory=list)
    n_pairs: int = 0  # the dataset's train pairs; train_rows adds their question forms

    def describe_rows(self) -> str:
        """``4 pairs`` or ``4 pairs as 8 question forms``."""
        forms = f" as {len(self.train_rows)} question forms" if len(self.train_rows) != self.n_pairs else ""
        return f"{self.n_pairs} pairs{forms}"

    def job_args(self) -> dict[str, Any]:
        """The JSON stored in ``jobs.args``."""
        return {"dataset_id": self.dataset["id"], "dataset": self.dataset["name"], "preset": self.preset,
                "overrides": self.overrides, "base_model": self.base_model_spec}


def plan_train(db: Any, team_id: str, *, dataset: str | None, preset: str, overrides: dict[str, Any],
               base_model: str, models_dir: Path, convert: bool = True) -> TrainPlan:
    """Check the dataset, the config and the base model, collecting every problem into one error."""
    from serving.errors import ServingError
    from serving.models import resolve

    problems: list[str] = []
    ds, rows, config, model_path = None, [], None, ""
    try:
        ds = resolve_dataset(db, team_id, dataset)
        refuse_superseded(ds)  # its items held erased text and are redacted
        rows, _ = load_dataset_messages(db, team_id, ds["id"])
    except (DatasetError, CurationError) as err:
        problems.append(str(err))
    try:
        config = resolve_config(preset, len(rows), overrides)
    except ConfigError as err:
        problems.append(str(err))
    try:
        model_path = str(resolve(base_model, models_dir, convert=convert).path)
    except ServingError as err:
        problems.append(str(err))
    if problems:
        raise TrainingError("; ".join(problems))
    assert ds is not None and config is not None
    n_pairs = len(rows)
    if config.question_forms:
        rows = augment_rows(rows)
    return TrainPlan(ds, preset, overrides, config, base_model, model_path, rows, n_pairs)


def queue_train(db: Any, team_id: str, plan: TrainPlan, *, created_by: str = "cli",
                slack_channel: str | None = None, slack_ts: str | None = None) -> int:
    """Queue a validated plan as a ``train`` job; returns the job id."""
    from curation import jobs

    return jobs.enqueue(db, team_id, "train", plan.job_args(), created_by=created_by,
                        slack_channel=slack_channel, slack_ts=slack_ts)


def train_now(db: Any, team_id: str, plan: TrainPlan, *, data_dir: Path, models_dir: Path,
              notifier: Any = None, created_by: str = "cli") -> dict[str, Any]:
    """Queue ``plan`` and run it in the foreground (still in a child process); returns the finished job.

    Older queued train jobs run first, one at a time, as the worker would run them.
    """
    from curation import jobs
    from training.notify import SilentNotifier
    from training.worker import WorkerContext, run_one

    job_id = queue_train(db, team_id, plan, created_by=created_by)
    ctx = WorkerContext(data_dir=data_dir, models_dir=models_dir, base_model=plan.base_model_spec,
                        notifier_for=lambda job: notifier or SilentNotifier())
    while (done := run_one(db, ctx, kinds=("train",))) is not None and done["id"] != job_id:
        pass
    return jobs.get(db, job_id)


def eval_items(db: Any, team_id: str, model: dict[str, Any], *, dataset: str | None = None,
               eval_file: Path | None = None) -> tuple[list[EvalItem], str, str | None]:
    """The questions to score a model on, their split key, and the system prompt to use."""
    ds = resolve_dataset(db, team_id, dataset or model["dataset_id"])
    if eval_file is not None:
        items = read_eval_file(eval_file)
        return items, split_key(items), ds["system_prompt"]
    _, rows = load_dataset_messages(db, team_id, ds["id"])
    items = [EvalItem(*pair_of(r)) for r in rows]
    if not items:
        raise DatasetError(f"dataset {ds['name']} has no eval rows; use --eval-file FILE.jsonl")
    return items, split_key(items, ds["id"]), ds["system_prompt"]


def evaluate_model(db: Any, team_id: str, name: str, *, out_dir: Path, dataset: str | None = None,
                   eval_file: Path | None = None, ood_file: Path | None = None, max_new_tokens: int = 128,
                   batch_size: int = 8, retrieval_k: int = 3, thresholds: Any = None, record: bool = True,
                   systems: tuple[str, ...] | None = None,
                   progress: Callable[[str, int, int], None] | None = None,
                   backend: str = "transformers", server_url: str | None = None,
                   vllm_python: Path | None = None, cpu_kvcache_gib: int = 1) -> dict[str, Any]:
    """Score the systems of training/evaluate.py for model ``name`` (``latest``, ``v2`` …).

    ``thresholds`` (curation.answer_modes.Thresholds, default: the calibrated ones) drive the bot
    systems exactly as the bot's settings do; ``ood_file`` adds questions the data cannot answer.

    Writes ``eval-<split>.json|.md|.png`` into ``out_dir`` (paths in ``report["files"]``) and stores
    the systems in the model's metrics, which promotion compares.

    ``backend``: ``transformers`` generates in-process (the adapter merged); ``vllm`` scores what
    vLLM serves (the adapter unmerged): one is spawned from ``vllm_python`` for the run, or the one
    at ``server_url`` is used (``training/eval_server.py``).
    """
    from curation.answer_facts import in_approved
    from curation.retrieval import top_pairs
    from serving.models import is_hf_folder
    from training.evaluate import SYSTEMS

    model = get_model(db, team_id, name)
    items, split, system_prompt = eval_items(db, team_id, model, dataset=dataset, eval_file=eval_file)
    ood = read_ood_file(ood_file) if ood_file is not None else []
    if not is_hf_folder(Path(model["base_model"])):
        raise TrainingError(f"{model['name']}: base model folder {model['base_model']} is missing; "
                            "run `threadtune init` or retrain")
    if not Path(model["adapter_path"] or "").is_dir():
        raise TrainingError(f"{model['name']}: adapter {model['adapter_path']} is missing; retrain it")
    if backend not in ("transformers", "vllm"):
        raise TrainingError(f"eval backend {backend!r}: use 'transformers' (in-process) or 'vllm'")
    with ExitStack() as stack:
        served = None
        if backend == "vllm" or server_url:
            from training.eval_server import vllm_for_eval

            served = stack.enter_context(vllm_for_eval(
                model["name"], Path(model["base_model"]), Path(model["adapter_path"]), url=server_url,
                vllm_python=vllm_python, cpu_kvcache_gib=cpu_kvcache_gib, log_path=out_dir / "eval-vllm.log"))
        report = evaluate(items, base_model=model["base_model"], adapter_path=model["adapter_path"],
                          system_prompt=system_prompt, retrieve=lambda q: top_pairs(db, team_id, q, retrieval_k),
                          max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress,
                          thresholds=thresholds, ood=ood, systems=systems or SYSTEMS,
                          known=lambda terms: in_approved(db, team_id, terms), served=served)
    report["backend"] = "vllm" if served else "transformers"
    report.update({"model": model["name"], "split": split, "dataset_id": model["dataset_id"]})
    stem = "eval-" + split.replace(":", "-")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md",
             "chart": out_dir / f"{stem}.png"}
    report["files"] = {k: str(v) for k, v in files.items()}
    import json

    files["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False))
    curve_md = calibration_table(report)
    files["markdown"].write_text(f"# {model['name']} on {split} (n={report['n']})\n\n"
                                 + markdown_table(report) + "\n"
                                 + (f"\n## Answer thresholds\n\n{curve_md}\n" if curve_md else ""))
    bar_chart(report, files["chart"], title=f"{model['name']} on {split} (n={report['n']})")
    if record:
        registry.record_eval(db, team_id, model["name"], report)
    return report
