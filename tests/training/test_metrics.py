"""Token F1, ROUGE-L and key-fact recall."""

from __future__ import annotations

import pytest

from training.metrics import fact_recall, key_facts, mean, rouge_l, token_f1


def test_token_f1_ignores_case_punctuation_and_articles():
    assert token_f1("The answer is 42!", "answer is 42") == 1.0
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_token_f1_is_partial_for_partial_overlap():
    assert token_f1("restart the vpn", "restart the server") == pytest.approx(0.5)


def test_rouge_l_rewards_order():
    assert rouge_l("run pip install then restart", "run pip install then restart") == pytest.approx(1.0)
    assert rouge_l("restart then install pip run", "run pip install then restart") < 0.5


def test_key_facts_are_numbers_urls_code_and_names():
    facts = key_facts("The cohort starts January 13th, 2025. See https://datatalks.club/x.html and run "
                      "`pip install dbt-core` with Docker.")
    assert {"13", "2025", "https://datatalks.club/x.html", "pip install dbt-core", "docker", "january"} <= facts
    assert "the" not in facts


def test_fact_recall_counts_facts_found_in_the_answer():
    reference = "Use port 5432 and `pgcli -h localhost`."
    assert fact_recall("connect on 5432 with pgcli -h localhost", reference) == 1.0
    assert fact_recall("connect on 5433", reference) == 0.0
    assert fact_recall("anything", "no facts here at all") is None


def test_mean_skips_missing_values():
    assert mean([1.0, None, 0.0]) == 0.5 and mean([None]) is None
