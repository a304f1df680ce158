"""bench/train.py helpers: padding waste, the uneven data, MFU arithmetic."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "bench" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_padding_waste_counts_pad_positions(bench):
    assert bench.padding_waste([10, 10, 10, 10], 2, 512, 0) == 0.0
    assert bench.padding_waste([10, 30], 2, 512, 0) == pytest.approx(20 / 60)
    assert bench.padding_waste([10, 1000], 2, 100, 0) == pytest.approx(90 / 200)  # truncated first


def test_the_bench_data_is_very_uneven(bench):
    lengths = [len(r["messages"][1]["content"].split()) for r in bench.uneven_rows(200)]
    assert min(lengths) < 20 and max(lengths) > 200 and sorted(lengths)[100] < 60


def test_lora_flops_per_token_is_about_four_n_for_short_rows(bench):
    n = 1_500_000_000
    fpt = bench.flops_per_token(n, 0, layers=28, hidden=1536, seq=16)
    assert 4 * n <= fpt < 4.01 * n


@pytest.mark.realdata
def test_the_acceptance_selection_is_sixty_short_faq_pairs(bench, shared_data):
    pairs = bench.faq_pairs(60)
    assert len(pairs) == 60 and len({p["id"] for p in pairs}) == 60
    assert all(60 <= len(p["answer"]) <= 320 for p in pairs)
    import json

    ids = {json.loads(line)["source_id"] for line in bench.PARAPHRASES.read_text().splitlines()}
    assert ids == {p["id"] for p in pairs}  # one paraphrase for every trained fact


def test_summaries_leave_out_warm_up_and_report_median_and_spread(bench):
    slow_start = [{"wall": 60.0, "cpu": 100.0, "tokens": 1000}]
    runs = [slow_start + [{"wall": w, "cpu": 2 * w, "tokens": 1000}] * 3 for w in (1.0, 2.0, 4.0)]
    out = bench.summarize(runs, warmup=1)
    assert out["useful_tokens_per_s"] == 500.0 and out["spread"] == [250.0, 1000.0]
    assert out["cpu_s_per_1k_tokens"] == 4.0 and out["step_s_median"] == 2.0
    assert out["warmup_s"] == 60.0 and out["repeats"] == 3 and out["measured_steps"] == 9
    with pytest.raises(ValueError, match="no measured steps"):
        bench.summarize([slow_start], warmup=1)
    assert bench.median([3, 1, 2, 10]) == 2.5 and bench.final_loss([9, 9, 1, 2, 3, 4, 5]) == 3.0


def test_the_work_cutting_levers_build_on_the_adopted_preset(bench):
    for variant in bench.ON_ADOPTED.values():
        assert variant["env"] == bench.ADOPTED["env"] and set(variant["overrides"]) <= {"lora_top_layers",
                                                                                      "base_learning_rate"}
    assert bench.ON_ADOPTED["adopted-top-half"]["overrides"]["lora_top_layers"] == 15  # of SmolLM2-135M's 30


def test_today_runs_with_openmp_defaults_and_adopted_with_ours(bench, monkeypatch):
    from training.hardware import with_thread_defaults

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    today = bench.variant_env(bench.TODAY)
    assert "OMP_WAIT_POLICY" not in today and today["GOMP_SPINCOUNT"] == "300000"  # libgomp's default
    assert with_thread_defaults(today) == today  # the worker's child keeps it: no passive default
    assert bench.variant_env(bench.ADOPTED)["OMP_WAIT_POLICY"] == "PASSIVE"
    passive = bench.variant_env(bench.LEVERS["omp-passive"])
    assert passive["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in passive
    assert bench.variant_env(bench.LEVERS["1-thread"])["OMP_NUM_THREADS"] == "1"
    assert bench.TODAY["overrides"]["bf16"] is False  # the old preset stays comparable
    # ... also when the preset gains levers: each is off in TODAY and on in the preset
    from curation.train_config import build_config

    adopted = build_config("cpu-small")
    for field in ("frozen_bf16", "answer_only_head", "packed_attention"):
        assert bench.TODAY["overrides"][field] is False and getattr(adopted, field) is True
    assert bench.TODAY["overrides"]["pad_rows_to"] is None and adopted.pad_rows_to == 64


@pytest.mark.slow
def test_the_levers_bench_runs_variants_in_lockstep_and_ends_with_json(tiny_model, tmp_path):
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "train.py"), "--levers", "--only", "today-fp32,adopted",
                           "--model", str(tiny_model), "--steps", "1", "--warmup", "1", "--repeats", "2",
                           "--lock", str(tmp_path / "bench.lock")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    order = [line.split()[0] for line in proc.stderr.splitlines() if " step " in line and line.startswith("  ")]
    assert order == ["today-fp32", "adopted"] * 4  # one step each, in turn, twice
    assert proc.stderr.count("holding the lock") == 2  # taken for each repeat, not the whole run
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["bench"] == "train-cpu-levers" and result["variants"]["today-fp32"]["ratio"] == 1.0
    adopted = result["variants"]["adopted"]
    assert adopted["measured_steps"] == 2 and adopted["useful_tokens_per_s"] > 0 and adopted["ratio"] > 0
    low, high = adopted["ratio_spread"]  # the ratio within each repeat
    assert 0 < low <= high and result["variants"]["today-fp32"]["ratio_spread"] == [1.0, 1.0]
    assert len(result["load_avg"]) == 2 and all(len(pair) == 2 for pair in result["load_avg"])
    assert adopted["precision"] == ("bf16" if result["machine"]["bf16_in_hardware"] else "fp32")
    assert result["variants"]["today-fp32"]["precision"] == "fp32"
    assert "flags" in result["machine"] and result["load_avg"]
