"""Authorization: roles from settings or a Slack user group, refusals that say who can, the audit
log, and workspaces that never see each other's pairs, models or answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from slack_sdk import WebClient

from bot.roles import has_role, refusal, role_of
from curation.candidates import add_candidate
from curation.retrieval import top_pairs
from curation.review import approve
from curation.status import status_counts
from curation.store import audit
from tests.conftest import ADMIN, MEMBER, REVIEWER

ROOT = Path(__file__).resolve().parents[2]


T = "T0FAKE"


def test_roles_from_settings(settings):
    assert role_of(settings, ADMIN, team_id=T) == "admin"
    assert role_of(settings, REVIEWER, team_id=T) == "reviewer"
    assert role_of(settings, MEMBER, team_id=T) == "member"
    assert has_role(settings, ADMIN, "reviewer", team_id=T)  # admins may review
    assert not has_role(settings, REVIEWER, "admin", team_id=T)


def test_roles_are_per_workspace(settings):
    """A plain id holds its role in the home workspace (THREADTUNE_TEAM_ID) only; T…:U… elsewhere."""
    assert role_of(settings, ADMIN, team_id="T0OTHER") == "member"
    s = settings.model_copy(update={"admin_ids": [ADMIN, "T0OTHER:U0OTHERADMIN"],
                                    "reviewer_ids": ["T0OTHER:" + REVIEWER]})
    assert role_of(s, "U0OTHERADMIN", team_id="T0OTHER") == "admin"
    assert role_of(s, "U0OTHERADMIN", team_id=T) == "member"
    assert role_of(s, REVIEWER, team_id="T0OTHER") == "reviewer"
    assert role_of(s, REVIEWER, team_id=T) == "member"


def test_roles_from_a_slack_user_group(settings, fake_slack):
    fake_slack.usergroups["S0ADMINS"] = ["U0GROUPADMIN"]
    fake_slack.usergroups["S0REVIEW"] = ["U0GROUPREV"]
    s = settings.model_copy(update={"admin_group": "S0ADMINS", "reviewer_group": "S0REVIEW"})
    client = WebClient(token="xoxb-t", base_url=fake_slack.api_url)
    assert role_of(s, "U0GROUPADMIN", client, team_id=T) == "admin"
    assert role_of(s, "U0GROUPREV", client, team_id=T) == "reviewer"
    assert role_of(s, "U0NOBODY", client, team_id=T) == "member"
    assert role_of(s, "U0GROUPADMIN", client, team_id="T0OTHER") == "member"
    assert "<!subteam^S0ADMINS>" in refusal(s, "admin", "train", team_id=T)


def test_refusal_names_who_can_and_the_setting(settings):
    text = refusal(settings, "reviewer", "approve pairs", team_id=T)
    assert ADMIN in text and REVIEWER in text and "THREADTUNE_REVIEWER_IDS" in text


def test_a_refusal_names_only_the_askers_workspace_admins(settings):
    s = settings.model_copy(update={"admin_ids": [ADMIN, "T0OTHER:U0THEIRADMIN"],
                                    "reviewer_ids": ["T0OTHER:U0THEIRREV"], "admin_group": "T0OTHER:S0THEIRS"})
    here = refusal(s, "reviewer", "approve pairs", team_id=T)
    assert ADMIN in here and "U0THEIRADMIN" not in here and "U0THEIRREV" not in here and "S0THEIRS" not in here
    there = refusal(s, "admin", "train", team_id="T0OTHER")
    assert "U0THEIRADMIN" in there and "<!subteam^S0THEIRS>" in there and ADMIN not in there


def test_non_admin_slash_commands_are_refused(bot, fake_slack):
    for sub in ("watch", "backfill 7", "forget <@U1>", "train", "promote v1", "rollback"):
        before = fake_slack.count("response_url")
        bot.command("/threadtune", sub, user_id=MEMBER, response_url=fake_slack.response_url(sub.split()[0]))
        calls = fake_slack.wait_for("response_url", before + 1)
        text = calls[-1].params.get("text", "")
        assert "Only admins" in text or "admin" in text.lower(), (sub, text)


def test_audit_cli_shows_privileged_actions_and_reviews(settings, db):
    audit(db, settings.team_id, ADMIN, "watch", "C1", via="slack")
    cid = add_candidate(db, settings.team_id, "How do I reset the VPN?", "Use the reset page.",
                        origin="manual").id
    approve(db, settings.team_id, cid, ADMIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADTUNE_", "SLACK_"))}
    env.update({"THREADTUNE_DATA_DIR": str(settings.data_dir), "THREADTUNE_TEAM_ID": settings.team_id})
    out = subprocess.run([sys.executable, "-m", "threadtune.cli", "audit", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    actions = {r["action"] for r in rows}
    assert "watch" in actions and "review:approve" in actions


def test_workspaces_never_see_each_others_pairs_models_or_answers(db):
    for team, fact in (("T0AAA", "VPN reset lives at https://vpn.a.example"),
                       ("T0BBB", "VPN reset lives at https://vpn.b.example")):
        cid = add_candidate(db, team, "Where do I reset the VPN?", fact, origin="manual").id
        approve(db, team, cid, ADMIN)
        db["models"].insert({"team_id": team, "version": 1, "name": "v1", "status": "live",
                             "base_model": "b", "adapter_path": f"/adapters/{team}"})
        db["answers"].insert({"team_id": team, "channel_id": "C1", "ts": "1.0", "question": "q",
                              "answer": fact, "model": "v1"})
    a = top_pairs(db, "T0AAA", "reset the VPN", k=5)
    assert a and all("vpn.a.example" in p["answer"] for p in a)
    b = top_pairs(db, "T0BBB", "reset the VPN", k=5)
    assert b and all("vpn.b.example" in p["answer"] for p in b)
    assert top_pairs(db, "T0CCC", "reset the VPN", k=5) == []
    from curation.model_versions import list_models, live_model

    assert [m["adapter_path"] for m in list_models(db, "T0AAA")] == ["/adapters/T0AAA"]
    assert live_model(db, "T0CCC") is None
    assert status_counts(db, "T0AAA")["candidates"]["approved"] == 1
