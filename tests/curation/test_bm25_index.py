"""The in-memory BM25 index behind top_pairs: FTS5's scores and tokens, per workspace, and in step
with every change to an approved pair, in any connection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation import review
from curation.bm25_index import Bm25Index, Tokens
from curation.candidates import add_candidate
from curation.retrieval import query_words, top_pairs
from curation.store import connect, transaction

ROOT = Path(__file__).resolve().parents[2]
FAQ = ROOT.parent / "shared" / "data" / "datatalksclub-faq" / "faq-de-ml.jsonl"

PAIRS = [
    ("How do I reset my VPN password?", "Open https://vpn.acme.internal/reset and run `acmectl vpn reset`."),
    ("Where is the parking garage?", "Behind building B, level -1; the café is next to it."),
    ("Can I expense a conference ticket?", "Expenses up to 250 EUR need no approval; above that, ask."),
    ("Why does my build keep failing?", "Builds fail when the runner's cache is full: clear it in CI."),
    ("Is the Wi-Fi password the same for guests?", "No: guests use ACME-Guest, password on the board."),
    ("What's the max_tokens setting for?", "It caps the tokens generated per answer; default 256."),
    ("Quién aprueba las vacaciones?", "Tu responsable aprueba las vacaciones en el portal."),
]


def approved(db, team, q, a):
    cid = add_candidate(db, team, q, a, origin="manual").id
    review.approve(db, team, cid, "U1")
    return cid


def fts5_scores(db, team, question):
    """What FTS5 itself scores for the same words (an OR of the quoted words)."""
    match = " OR ".join('"' + w.replace('"', '""') + '"' for w in query_words(question))
    return dict(db.execute(
        "select c.id, bm25(candidates_fts) from candidates_fts f join candidates c on c.rowid = f.rowid "
        "where candidates_fts match ? and c.team_id = ? order by bm25(candidates_fts)", [match, team]).fetchall())


def assert_same_as_fts5(db, team, questions):
    for question in questions:
        want = fts5_scores(db, team, question)
        got = {p["id"]: p["bm25"] for p in top_pairs(db, team, question, k=len(want) or 1)}
        assert got.keys() == want.keys(), question
        for cid, score in want.items():
            assert got[cid] == pytest.approx(score, rel=1e-9, abs=1e-12), question


def test_scores_are_fts5s_own_when_the_store_holds_one_workspaces_approved_pairs(db):
    for q, a in PAIRS:
        approved(db, "T1", q, a)
    assert_same_as_fts5(db, "T1", [
        "vpn password reset", "resetting passwords", "Wifi for guests?", "CAFE near the garage",
        "builds failing again", "max_tokens default", "vacaciones aprobación quién", "250 EUR",
        "expensing conferences", "acme", "the", "nothing matches zzzz"])


@pytest.mark.realdata
def test_scores_are_fts5s_own_on_the_real_faq(tmp_path):
    if not FAQ.is_file():
        pytest.skip(f"{FAQ} is absent")
    rows = [json.loads(line) for line in FAQ.read_text(encoding="utf-8").splitlines()[:300] if line.strip()]
    db = connect(tmp_path / "threadtune.db")
    with transaction(db):
        db["candidates"].insert_all(
            [{"team_id": "T1", "question": r["question"], "answer": r["answer"], "status": "approved",
              "origin": "import", "dedup_key": f"faq-{k}", "created_at": "2026-11-30"} for k, r in enumerate(rows)])
    assert_same_as_fts5(db, "T1", [r["question"] for r in rows[::15]]
                        + ["docker compose won't start postgres", "homework deadline extension"])


def test_another_workspaces_pairs_do_not_move_a_workspaces_ranking(db):
    # In T1 alone, "alpha" and "beta" are equally rare, and the shorter pair wins. A flood of "alpha"
    # in T2 made FTS5 (whose statistics span the whole table) rank T1's other pair first.
    short = approved(db, "T1", "alpha question", "short answer")
    approved(db, "T1", "beta question", "a somewhat longer answer than the other one")
    approved(db, "T1", "unrelated", "gamma delta")
    assert top_pairs(db, "T1", "alpha beta", k=1)[0]["id"] == short
    for n in range(40):
        approved(db, "T2", f"alpha topic {n}", f"alpha answer number {n}")
    assert top_pairs(db, "T1", "alpha beta", k=1)[0]["id"] == short


def test_every_change_to_an_approved_pair_reaches_the_next_lookup_in_another_connection(db, tmp_path):
    other = connect(Path(db.conn.execute("pragma database_list").fetchone()[2]))
    cid = approved(db, "T1", "How do I reset my VPN password?", "Use the self-service page.")
    assert [p["id"] for p in top_pairs(other, "T1", "vpn password")] == [cid]  # builds the index
    new = approved(db, "T1", "Where is the parking garage?", "Behind building B.")
    assert [p["id"] for p in top_pairs(other, "T1", "parking garage")] == [new]
    db["candidates"].update(new, {"answer": "Under the canteen now."})  # an edit
    assert top_pairs(other, "T1", "building") == []
    assert [p["id"] for p in top_pairs(other, "T1", "canteen")] == [new]
    assert top_pairs(other, "T1", "canteen")[0]["answer"] == "Under the canteen now."
    db["candidates"].update(new, {"stale": 1})  # its source was deleted
    assert top_pairs(other, "T1", "canteen") == []
    db["candidates"].update(new, {"stale": 0})
    db["candidates"].update(new, {"status": "rejected"})
    assert top_pairs(other, "T1", "canteen") == []
    with transaction(db):
        db.execute("delete from reviews where candidate_id = ?", [cid])
        db["candidates"].delete(cid)
    assert top_pairs(other, "T1", "vpn") == []


def test_many_changes_rebuild_the_index_and_rank_as_a_fresh_one(db):
    ids = [approved(db, "T1", f"question {n} about widgets", f"answer {n} on widgets and gadgets")
           for n in range(30)]
    top_pairs(db, "T1", "widgets")
    for n, cid in enumerate(ids[:20]):
        db["candidates"].update(cid, {"answer": f"now about sprockets {n}" + " sprockets" * n})
    for q, a in PAIRS:
        approved(db, "T1", q, a)
    assert_same_as_fts5(db, "T1", ["widgets", "sprockets", "gadgets question", "vpn password"])
    with transaction(db):  # a bulk import: more changes than the index holds
        db["candidates"].insert_all(
            [{"team_id": "T1", "question": f"imported {n} widgets?", "answer": f"bulk answer {n} sprockets",
              "status": "approved", "origin": "import", "dedup_key": f"bulk-{n}", "created_at": "2026-11-30"}
             for n in range(100)])
    assert_same_as_fts5(db, "T1", ["widgets", "sprockets", "bulk imported", "vpn password"])


def test_a_pair_approved_in_a_transaction_that_rolls_back_is_never_retrieved(db):
    approved(db, "T1", "Where is the parking garage?", "Behind building B.")
    top_pairs(db, "T1", "parking")
    with pytest.raises(RuntimeError):
        with transaction(db):
            approved(db, "T1", "How do I reset my VPN password?", "Use the self-service page.")
            assert len(top_pairs(db, "T1", "vpn password")) == 1  # this connection sees its own write
            raise RuntimeError("rolled back")
    assert top_pairs(db, "T1", "vpn password") == []
    approved(db, "T1", "How do I order a new badge?", "Ask reception for a badge.")
    assert [p["question"] for p in top_pairs(db, "T1", "badge")] == ["How do I order a new badge?"]


def test_tokens_are_sqlites_porter_tokens():
    tokens = Tokens()
    assert tokens.of(tokens.words("Running RUNS café_au-lait ÉTÉ x2")) == [
        "run", "run", "cafe", "au", "lait", "et", "x2"]


def test_an_index_scores_only_documents_that_hold_a_term_and_takes_documents_out():
    index = Bm25Index([(1, "red apples"), (2, "green pears"), (3, "red pears")])
    red = index.query_terms(["red"])
    assert [i for i, _ in index.top(red, 5)] == [1, 3]
    index.remove(1)
    assert [i for i, _ in index.top(red, 5)] == [3]
    index.add(4, "red red red")
    assert [i for i, _ in index.top(red, 5)] == [4, 3] and len(index) == 3
    assert index.top(index.query_terms(["blue"]), 5) == [] and index.score(2, red) == 0.0


def test_warming_builds_every_workspaces_index_before_the_first_question(db):
    from curation import retrieval

    approved(db, "T1", "Where is the parking garage?", "Behind building B.")
    approved(db, "T2", "How do I reset my VPN password?", "Use the self-service page.")
    add_candidate(db, "T3", "Pending only?", "Not approved yet.", origin="manual")
    assert sorted(retrieval.warm(db)) == ["T1", "T2"]
    path = db.conn.execute("pragma database_list").fetchone()[2]
    built = {team for (p, _, team), entry in retrieval._ENTRIES.items() if p == path and entry.index is not None}
    assert {"T1", "T2"} <= built and "T3" not in built


def test_an_erased_pair_leaves_every_index_at_its_next_lookup(db):
    from curation.erasure import redact_candidates

    other = connect(Path(db.conn.execute("pragma database_list").fetchone()[2]))
    cid = approved(db, "T1", "What is Dana's home address?", "Dana lives at 12 Quayside Lane.")
    approved(db, "T1", "Where is the parking garage?", "Behind building B.")
    assert [p["id"] for p in top_pairs(other, "T1", "Quayside address")] == [cid]
    redact_candidates(db, "T1", [cid], "erased on request")
    assert top_pairs(other, "T1", "Quayside address") == [] and top_pairs(db, "T1", "Dana") == []
