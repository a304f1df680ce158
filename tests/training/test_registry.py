"""The model registry: versions, lineage, eval-gated promotion, rollback."""

from __future__ import annotations

import json

import pytest

from tests.training.conftest import TEAM
from curation import model_versions
from curation.errors import NotFound
from training import registry
from training.errors import RegistryError

SPLIT = "dataset:ds1"


def _model(db, tuned: float | None, base: float = 0.1, split: str = SPLIT):
    model = registry.register_model(db, TEAM, base_model="/m/base", adapter_path="/m/a", dataset_id="ds1",
                                    config={"lora_r": 16})
    if tuned is not None:
        registry.record_eval(db, TEAM, model["name"], {"split": split, "n": 3, "systems": {
            "base": {"token_f1": base}, "tuned": {"token_f1": tuned}}})
    return model_versions.get_model(db, TEAM, model["name"])


def _bot_evaluated(db):
    """v1, evaluated on dataset ds1 twice: an older eval without the bot system, then one with it."""
    model = registry.register_model(db, TEAM, base_model="/m/base", adapter_path="/m/a", dataset_id="ds1")
    registry.record_eval(db, TEAM, model["name"], {"split": "file:0123456789abcdef", "n": 3, "systems": {
        "base": {"token_f1": 0.1}, "tuned": {"token_f1": 0.3}}})
    registry.record_eval(db, TEAM, model["name"], {"split": SPLIT, "n": 3, "systems": {
        "base": {"token_f1": 0.1}, "tuned": {"token_f1": 0.5},
        "bot-base": {"token_f1": 0.6}, "bot": {"token_f1": 0.7}}})
    return model_versions.get_model(db, TEAM, model["name"])


def _audit(db, action):
    return [dict(r) for r in db.query("select * from audit where action = ?", [action])]


def test_versions_count_up_per_team_and_record_lineage(db):
    first, second = _model(db, 0.3), _model(db, 0.4)
    assert (first["name"], second["name"]) == ("v1", "v2")
    registry.promote(db, TEAM, "v1")
    third = _model(db, 0.5)
    assert third["parent"] == "v1" and third["status"] == "candidate" and third["config"] == {"lora_r": 16}
    assert registry.register_model(db, "T0OTHER", base_model="b", adapter_path="a", dataset_id="d")["name"] == "v1"


def test_promotion_is_refused_on_a_worse_score_and_recorded(db):
    _model(db, 0.40)
    registry.promote(db, TEAM, "v1")
    _model(db, 0.35)
    with pytest.raises(RegistryError, match="v2 scores token_f1 0.350.*below the live v1's 0.400.*--force"):
        registry.promote(db, TEAM, "v2")
    assert model_versions.live_model(db, TEAM)["name"] == "v1"
    refused = _audit(db, "model.promote_refused")
    assert refused and refused[0]["target"] == "v2" and "below" in json.loads(refused[0]["detail"])["reason"]


def test_force_promotes_a_worse_model_and_says_so_in_the_audit(db):
    _model(db, 0.40)
    registry.promote(db, TEAM, "v1")
    _model(db, 0.35)
    live = registry.promote(db, TEAM, "v2", force=True, actor="U0ADMIN")
    assert live["status"] == "live" and model_versions.get_model(db, TEAM, "v1")["status"] == "retired"
    detail = json.loads(_audit(db, "model.promote")[-1]["detail"])
    assert detail["forced"] is True and detail["previous"] == "v1"


def test_a_better_model_is_promoted_and_the_hook_is_told(db):
    _model(db, 0.30)
    registry.promote(db, TEAM, "v1")
    _model(db, 0.45)
    seen = []
    registry.promote(db, TEAM, "latest", on_change=seen.append)
    assert [m["name"] for m in seen] == ["v2"] and model_versions.live_model(db, TEAM)["name"] == "v2"


def test_an_unevaluated_model_is_not_promoted(db):
    _model(db, None)
    with pytest.raises(RegistryError, match="no eval results.*threadtune eval v1"):
        registry.promote(db, TEAM, "v1")


def test_the_first_model_must_not_be_worse_than_the_base(db):
    _model(db, 0.05, base=0.2)
    with pytest.raises(RegistryError, match="below the base model"):
        registry.promote(db, TEAM, "v1")


def test_models_evaluated_on_different_splits_are_not_compared(db):
    _model(db, 0.4)
    registry.promote(db, TEAM, "v1")
    _model(db, 0.9, split="dataset:other")
    with pytest.raises(RegistryError, match="not evaluated on the same eval split"):
        registry.promote(db, TEAM, "v2")


def test_rollback_walks_back_through_promotions_to_the_base(db):
    for score in (0.3, 0.4, 0.5):
        _model(db, score)
        registry.promote(db, TEAM, "latest")
    seen = []
    assert registry.rollback(db, TEAM, on_change=seen.append)["name"] == "v2"
    assert registry.rollback(db, TEAM)["name"] == "v1"
    assert registry.rollback(db, TEAM) is None
    assert model_versions.live_model(db, TEAM) is None and seen[0]["name"] == "v2"
    with pytest.raises(RegistryError, match="no live model"):
        registry.rollback(db, TEAM)
    assert len(_audit(db, "model.rollback")) == 3


def test_unknown_versions_list_the_known_ones(db):
    _model(db, 0.3)
    with pytest.raises(NotFound, match="'v7' not found.*known: v1"):
        registry.promote(db, TEAM, "v7")


def test_the_gate_scores_the_bot_system_when_the_eval_has_it(db):
    model = registry.register_model(db, TEAM, base_model="/m/base", adapter_path="/m/a", dataset_id="ds1")
    # tuned alone beats base, but what users get (the bot pipeline) is worse with this adapter
    registry.record_eval(db, TEAM, model["name"], {"split": SPLIT, "n": 3, "systems": {
        "base": {"token_f1": 0.1}, "tuned": {"token_f1": 0.5},
        "bot-base": {"token_f1": 0.8}, "bot": {"token_f1": 0.7}}})
    with pytest.raises(RegistryError, match="0.700 on dataset:ds1, below the base model's 0.800"):
        registry.promote(db, TEAM, model["name"])
    better = registry.register_model(db, TEAM, base_model="/m/base", adapter_path="/m/b", dataset_id="ds1")
    registry.record_eval(db, TEAM, better["name"], {"split": SPLIT, "n": 3, "systems": {
        "base": {"token_f1": 0.1}, "tuned": {"token_f1": 0.05},
        "bot-base": {"token_f1": 0.8}, "bot": {"token_f1": 0.8}}})
    assert registry.promote(db, TEAM, better["name"])["status"] == "live"


def test_the_listed_score_is_the_latest_eval_as_the_gate_reads_it(db):
    model = _bot_evaluated(db)
    assert model_versions.latest_score(model) == "0.700 bot on dataset:ds1"
    # an eval from before the bot system existed is read on tuned, as the gate does
    assert model_versions.latest_score(_model(db, 0.42)) == "0.420 tuned on dataset:ds1"
    assert model_versions.latest_score(_model(db, None)) is None


def test_a_candidate_with_a_bot_score_is_compared_with_an_older_live_eval_on_the_same_system(db):
    live = _model(db, 0.5)  # an eval from before the bot system: tuned 0.5
    registry.promote(db, TEAM, live["name"])
    new = registry.register_model(db, TEAM, base_model="/m/base", adapter_path="/m/b", dataset_id="ds1")
    registry.record_eval(db, TEAM, new["name"], {"split": SPLIT, "n": 3, "systems": {
        "base": {"token_f1": 0.1}, "tuned": {"token_f1": 0.4}, "bot-base": {"token_f1": 0.7},
        "bot": {"token_f1": 0.9}}})
    # bot 0.9 against the live tuned 0.5 would pass; tuned against tuned is the fair comparison
    with pytest.raises(RegistryError, match="0.400 on dataset:ds1, below the live v1's 0.500"):
        registry.promote(db, TEAM, new["name"])
