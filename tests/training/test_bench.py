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
