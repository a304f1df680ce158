"""One dataset-version resolver for the CLI, the bot and the worker: latest, vN, N, a hash or its prefix."""

from __future__ import annotations

import pytest

from curation.dataset_lookup import resolve_dataset
from curation.errors import NotFound, StoreError
from curation.store import now

TEAM = "T0FAKE"


def _version(db, digest: str, version: int, team_id: str = TEAM) -> None:
    db["datasets"].insert({"id": digest, "team_id": team_id, "version": version, "name": f"v{version}",
                           "system_prompt": None, "n_train": 1, "n_eval": 0, "meta": '{"pairs": 1}',
                           "created_by": "test", "created_at": now()})


@pytest.fixture
def three(db):
    _version(db, "aaaa1111" + "0" * 56, 1)
    _version(db, "aaaa2222" + "0" * 56, 2)
    _version(db, "bbbb3333" + "0" * 56, 3)
    _version(db, "cccc4444" + "0" * 56, 4, team_id="T0OTHER")
    return db


@pytest.mark.parametrize("spec, version", [
    ("latest", 3), ("LATEST", 3), (None, 3), ("", 3), ("  ", 3), ("v2", 2), ("V2", 2), ("2", 2), (2, 2),
    ("aaaa1111" + "0" * 56, 1), ("aaaa22", 2), ("bbbb3333", 3), ("AAAA11", 1)])
def test_every_way_of_naming_a_version_finds_the_same_row(three, spec, version):
    row = resolve_dataset(three, TEAM, spec)
    assert row["version"] == version and row["meta"] == {"pairs": 1}


def test_an_ambiguous_prefix_names_the_versions_it_matches(three):
    with pytest.raises(NotFound, match="'aaaa' not found"):  # too short to be read as a prefix
        resolve_dataset(three, TEAM, "aaaa")
    _version(three, "aaaa1111" + "1" * 56, 5)
    with pytest.raises(NotFound, match="'aaaa1111' is ambiguous.*v1, v5.*more characters"):
        resolve_dataset(three, TEAM, "aaaa1111")


def test_another_teams_version_is_not_found_and_the_known_ones_are_listed(three):
    with pytest.raises(NotFound, match="'cccc4444' not found for team T0FAKE \\(known versions: v1, v2, v3\\)"):
        resolve_dataset(three, TEAM, "cccc4444")
    with pytest.raises(NotFound, match="'v9' not found"):
        resolve_dataset(three, TEAM, "v9")


def test_no_version_yet_says_how_to_make_one(db):
    with pytest.raises(NotFound, match="none yet; approve pairs and run `threadtune dataset create`"):
        resolve_dataset(db, TEAM, "latest")


def test_a_store_without_tables_says_to_run_init(tmp_path):
    from curation.store import connect

    bare = connect(tmp_path / "bare.db", migrate=False)
    with pytest.raises(StoreError, match="threadtune init"):
        resolve_dataset(bare, TEAM, "latest")
