"""kill -9 in the middle of a curate run leaves the store consistent; the rerun has no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from curation.curate import curate
from curation.store import connect
from tests.conftest import ROOT
from tests.curation.helpers import TEAM, add_thread, add_user
from tests.fakes.llm import FakeLLM, Reply, pairs_json
from tests.fakes.wait import eventually

REPLY = Reply(pairs_json(("How do I restart the build agent?", "Run agentctl restart on the host.",
                          "agentctl restart")), delay_s=0.1)

CHILD = textwrap.dedent("""
    import sys
    from curation.curate import curate
    from curation.extract import LLM
    from curation.store import connect
    from serving.client import ModelClient
    db = connect(sys.argv[1])
    llm = LLM(ModelClient(sys.argv[2], "fake-llm", max_retries=0))
    curate(db, sys.argv[3], llm)
""")


def seed(db) -> None:
    add_user(db, "U1", "Alice")
    add_user(db, "U2", "Bob")
    for i in range(6):
        add_thread(db, "C0HELP", f"17{i:02d}000000.000100", ("U1", f"How do I restart build agent {i}?"),
                   [("U2", f"Run agentctl restart on host {i}, it takes a minute.")])


def test_kill_9_mid_run_then_rerun_completes_without_duplicates(settings, db, tmp_path):
    seed(db)
    reference = connect(tmp_path / "ref.db")
    seed(reference)
    with FakeLLM(responder=lambda body: REPLY) as fake:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(settings.db_path), fake.base_url, TEAM],
                                 env=env, cwd=ROOT)
        eventually(lambda: child.poll() is not None or db["curated_sources"].count >= 2, 60,
                   what="two curated sources")
        assert child.poll() is None, "the child finished before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        done_before = db["curated_sources"].count
        assert done_before < 6
        # consistent: every source marked curated has its candidates, and nothing else has any
        curated = {r[0] for r in db.execute("select key from curated_sources")}
        with_candidates = {f"{r[0]}:{r[1]}" for r in db.execute(
            "select distinct s.channel_id, s.ts from candidate_sources s")}
        assert with_candidates == curated
        report = curate(db, TEAM, _llm(fake))
        assert report.skipped == done_before and sum(report.sources.values()) == 6 - done_before
        curate(reference, TEAM, _llm(fake))
    keys = [r[0] for r in db.execute("select dedup_key from candidates order by dedup_key")]
    assert keys == [r[0] for r in reference.execute("select dedup_key from candidates order by dedup_key")]
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"


def _llm(fake):
    from curation.extract import LLM
    from serving.client import ModelClient

    return LLM(ModelClient(fake.base_url, "fake-llm", max_retries=0))
