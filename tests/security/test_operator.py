"""Operator identity (#16): `--as` takes only a known user id and is recorded as "operator X acting
as U"; a quorum counts distinct people; `dataset import --approved` checks the effective user."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from curation.candidates import add_candidate
from threadtune.cli import app
from threadtune.shell import set_settings
from tests.conftest import ADMIN, REVIEWER

T = "T0FAKE"


@pytest.fixture
def cli(settings, db):
    def run(*args: str, code: int = 0, quorum: int = 1):
        set_settings(settings.model_copy(update={"review_quorum": quorum}))
        try:
            result = CliRunner().invoke(app, list(args))
        finally:
            set_settings(None)
        assert result.exit_code == code, result.output
        return result.output

    return run


@pytest.fixture
def cid(db):
    return str(add_candidate(db, T, "How do I reset the VPN token?", "Use the self-service portal.",
                             origin="manual").id)


def test_one_operator_cannot_meet_a_quorum_of_two_alone(cli, db, cid):
    cli("review", "approve", cid, quorum=2)
    out = cli("review", "approve", cid, "--as", REVIEWER, quorum=2)
    assert "distinct people" in out
    row = db["candidates"].get(int(cid))
    assert row["status"] == "pending" and len(json.loads(row["approvals"])) == 1


def test_as_is_recorded_as_the_operator_acting_as_the_user(cli, db, cid):
    cli("review", "approve", cid, "--as", REVIEWER)
    actor, detail = db.execute("select actor, detail from audit where action = 'review.approve'").fetchone()
    assert actor == REVIEWER and f"acting as {REVIEWER}" in detail and "operator cli:" in detail
    assert db.execute("select operator from reviews where action = 'approve'").fetchone()[0].startswith("cli:")


@pytest.mark.parametrize("name", ["U0NOBODY", "<!channel>", "U0REVIEWER x", "someone"])
def test_as_takes_only_a_known_user_id(cli, db, cid, name):
    out = cli("review", "approve", cid, "--as", name, code=2)
    assert "not a known user" in out
    assert db["candidates"].get(int(cid))["status"] == "pending"
    assert db.execute("select count(*) from reviews where action = 'approve'").fetchone()[0] == 0


def test_a_user_from_the_users_table_is_known(cli, db, cid):
    db["users"].insert({"team_id": T, "id": "U0CAROL", "name": "carol"})
    cli("review", "reject", cid, "--reason", "duplicate", "--as", "U0CAROL")
    assert db["candidates"].get(int(cid))["status"] == "rejected"


def test_import_approved_checks_the_admin_role_of_the_effective_user(cli, db, tmp_path):
    db["users"].insert({"team_id": T, "id": "U0NOBODY", "name": "nobody"})
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"question": "Where do I file travel expenses?",
                                "answer": "In the finance portal under Travel."}) + "\n")
    for who in ("U0NOBODY", REVIEWER):
        assert "only admins" in cli("dataset", "import", str(path), "--approved", "--as", who, code=2)
    assert db["candidates"].count == 0
    cli("dataset", "import", str(path), "--approved", "--as", ADMIN)
    assert db.execute("select status from candidates").fetchone()[0] == "approved"
