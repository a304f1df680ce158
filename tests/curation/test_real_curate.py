"""Curate real Julia Slack threads with the embedded model served by `transformers serve`."""

from __future__ import annotations

import json

import pytest

from curation.candidates import list_candidates
from curation.curate import run_curate
from curation.slack_export import import_export

THREADS = ("1607925514.442200", "1607986528.116900")  # two short answered helpdesk threads


def mini_export(shared_data, dest):
    """A Slack export folder holding just the two threads (the data stays in shared/, unchanged)."""
    src = shared_data / "julialang-slack"
    channels = [c for c in json.loads((src / "channels.json").read_text()) if c["name"] == "helpdesk"]
    day = [m for m in json.loads((src / "helpdesk" / "2020-12-14.json").read_text())
           if m.get("thread_ts", m["ts"]) in THREADS]
    (dest / "helpdesk").mkdir(parents=True)
    (dest / "channels.json").write_text(json.dumps(channels))
    (dest / "users.json").write_text((src / "users.json").read_text())
    (dest / "helpdesk" / "2020-12-14.json").write_text(json.dumps(day))
    return dest


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.timeout(900)
def test_real_threads_curate_with_the_embedded_model(settings, db, shared_data, tmp_path, embedded_model_dir):
    import_export(db, mini_export(shared_data, tmp_path / "export"), settings.team_id)
    s = settings.model_copy(update={"base_model": str(embedded_model_dir), "llm_base_url": None})
    seen = []
    from threadtune.curation_llm import curation_llm

    llm = curation_llm(s, backend="embedded", max_tokens=48)
    report = run_curate(db, s.team_id, llm, answered_reaction=s.answered_reaction,
                        progress=lambda done, total, label: seen.append((done, total)))
    assert report.sources["thread"] == 2 and seen[-1] == (2, 2)
    rows = list_candidates(db, settings.team_id)
    det = [c for c in rows if c["origin"] == "deterministic"]
    assert len(det) == 2  # the weak model cannot lose the deterministic pairs
    assert {c["sources"][0]["ts"] for c in det} == set(THREADS)
    for c in rows:
        assert c["prompt_version"]
        assert c["status"] in ("pending", "auto_rejected", "variant")
        if c["status"] == "auto_rejected":
            assert c["reject_reason"]
    again = run_curate(db, s.team_id, llm, answered_reaction=s.answered_reaction)
    assert again.skipped == 2 and not again.sources
