"""The answer core: one prompt builder, the three modes, grounding flags, calibration. Pure parts,
plus the store reads they need on a real SQLite file."""

from __future__ import annotations

import pytest

from curation.answer_calibration import curve, pick, table
from curation.answer_facts import in_approved
from curation.answer_match import evidence, match_score
from curation.answer_modes import (ABSTAIN, ABSTAIN_TEXT, CLOSEST, GENERATED, VERIFIED, Thresholds, answer_text,
                                   check_generated, closest_label, decide, held_back_note, settle,
                                   unsupported_terms)
from curation.answer_prompt import RETRIEVAL_HEADER, build_messages
from curation.answer_team import pick_team
from curation.errors import CurationError
from curation.retrieval import top_pairs
from curation.store import connect, now

TEAM = "T0CORE"
EXPENSES = ("Up to what amount can I expense something without my manager approving?",
            "Anything up to 250 EUR needs no approval; above 250 EUR your manager approves it in the "
            "Expenses app.")
VPN = ("How do I reset my VPN password?", "Run `vpn-reset --user you` and follow the link at https://vpn.acme.test/reset.")


@pytest.fixture
def db(tmp_path):
    db = connect(tmp_path / "threadtune.db")
    for q, a in (EXPENSES, VPN):
        db["candidates"].insert({"team_id": TEAM, "question": q, "answer": a, "status": "approved",
                                 "origin": "manual", "dedup_key": q, "approvals": '["U0ANNA"]',
                                 "created_at": now(), "updated_at": "2026-03-02T10:00:00"})
    db["candidates"].insert({"team_id": TEAM, "question": "What is the per diem in Paris?",
                             "answer": "The per diem in Paris is 75 EUR.", "status": "rejected",
                             "origin": "manual", "dedup_key": "rejected", "created_at": now()})
    db.conn.commit()
    return db


def test_eval_and_the_bot_send_the_same_messages_for_the_same_question_and_pairs(db):
    from bot.answer_prompt import prepare
    from training.evaluate import chats_for

    question = "is there a limit for expensing without the manager's ok?"
    prep = prepare(db, TEAM, question, default_system_prompt="Be brief.", retrieval=True,
                   thresholds=Thresholds(verify=1.0, abstain=0.0))
    assert prep.mode == GENERATED and prep.pairs
    assert chats_for([question], "Be brief.", {question: prep.pairs}) == [prep.messages]
    system = prep.messages[0]["content"]
    assert system.startswith("Be brief.") and RETRIEVAL_HEADER in system and "250 EUR" in system


def test_the_prompt_keeps_recent_history_and_alternates_roles():
    history = [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "one"},
               {"role": "user", "content": "two"}, {"role": "assistant", "content": "ok"}]
    chat = build_messages("Sys", [], "Q?", history)
    assert [t["role"] for t in chat] == ["system", "user", "assistant", "user"]
    assert chat[1]["content"] == "one\ntwo" and chat[-1]["content"] == "Q?"
    long = build_messages("Sys", [], "Q?", [{"role": "user", "content": "x" * 5000}])
    assert long[1]["content"] == "x" * 4000 + "\nQ?"
    assert build_messages("", [], "Q?") == [{"role": "user", "content": "Q?"}]


def test_a_close_rephrasing_is_answered_verbatim_with_who_approved_it(db):
    from bot.answer_prompt import prepare

    prep = prepare(db, TEAM, "Up to what amount can I expense something without approval?",
                   default_system_prompt="Be brief.", retrieval=True, thresholds=Thresholds())
    assert prep.mode == VERIFIED and prep.messages == []  # nothing to generate
    assert answer_text(prep.decision) == EXPENSES[1]
    assert prep.verified_pair["approved_by"] == ["U0ANNA"] and prep.verified_pair["approved_at"].startswith("2026-03-02")
    assert [s["question"] for s in prep.sources] == [EXPENSES[0]]


def test_modes_follow_the_thresholds():
    pair = {"id": 1, "question": EXPENSES[0], "answer": EXPENSES[1]}
    asked = "expense limit without my manager approving?"
    score = match_score(asked, pair)
    assert 0 < score < 1
    assert decide(asked, [pair], Thresholds(verify=score, abstain=0)).mode == VERIFIED
    # abstaining is decided on the evidence: the match and the pair's BM25 score for the question
    # over its score for its own question, averaged
    known = evidence(asked, {**pair, "bm25": -2.0, "bm25_self": -8.0})
    assert known == pytest.approx((score + 0.25) / 2, abs=1e-4)
    assert evidence(asked, {**pair, "bm25": -9.0, "bm25_self": -8.0}) == pytest.approx((score + 1) / 2, abs=1e-4)
    assert evidence(asked, pair) == pytest.approx(score / 2, abs=1e-4)  # no BM25: no lexical evidence
    pair.update(bm25=-2.0, bm25_self=-8.0)
    assert decide(asked, [pair], Thresholds(verify=1.0, abstain=known)).mode == GENERATED
    assert decide(asked, [pair], Thresholds(verify=1.0, abstain=min(1.0, known + 0.01))).mode == ABSTAIN
    assert decide(asked, [], Thresholds()).mode == ABSTAIN
    assert answer_text(decide(asked, [], Thresholds())) == ABSTAIN_TEXT
    with pytest.raises(ValueError, match="abstain"):
        Thresholds(verify=0.3, abstain=0.5)


def test_the_lexical_evidence_does_not_depend_on_the_size_of_the_store(tmp_path):
    from curation.answer_match import signals

    question = "is there a deadline for travel expense reports after a trip?"
    pair = ("How do I submit an expense report for travel?", "Use the Expenses app within 30 days.")
    filler = [(f"How do I configure widget {n} for team {n % 7}?", f"Open settings page {n}.") for n in range(300)]
    got = []
    for extra in ([], filler):
        db = connect(tmp_path / f"s{len(extra)}.db")
        for k, (q, a) in enumerate([pair] + extra):
            db["candidates"].insert({"team_id": TEAM, "question": q, "answer": a, "status": "approved",
                                     "origin": "manual", "dedup_key": f"k{k}", "created_at": now()})
        db.conn.commit()
        got.append(signals(question, top_pairs(db, TEAM, question)))
    # one pair or 301: raw BM25 differs by far, the evidence hardly at all, and it is answered
    assert abs(got[0][1] - got[1][1]) < 0.05 and min(e for _, e in got) >= Thresholds().abstain


def test_unrelated_questions_abstain_and_rephrasings_do_not(db):
    for question in ("What is the capital of Australia?", "Can you recommend a sourdough recipe?"):
        pairs = top_pairs(db, TEAM, question)
        assert decide(question, pairs, Thresholds()).mode == ABSTAIN, question
    question = "how do I reset the password of my vpn?"
    assert decide(question, top_pairs(db, TEAM, question), Thresholds()).mode == VERIFIED


def test_a_garbled_figure_is_left_out_with_its_sentence_and_the_rest_kept(db):
    pairs = top_pairs(db, TEAM, "expense limit?", k=1)
    text = "Anything above 150 EUR needs review; see https://vpn.acme.test/reset and run `vpn-reset --user you`."
    assert unsupported_terms(text, [p["answer"] for p in pairs]) == [
        "vpn-reset --user you", "https://vpn.acme.test/reset", "150"]
    checked = check_generated("Your manager approves it. Anything above 150 EUR needs review.\n"
                              "1. Open the Expenses app.\n2. Submit by the 5th.", "expense limit?", pairs)
    assert checked.text == "Your manager approves it.\n1. Open the Expenses app."
    # a fact held back: the best retrieved pair is quoted instead (without one, the rest is kept)
    assert checked.held_back == ["150", "5"] and checked.mode == CLOSEST
    assert check_generated("Your manager approves it. Anything above 150 EUR needs review.", "expense limit?",
                           []).mode == GENERATED
    # nothing left and nothing retrieved: the pipeline abstains rather than show an empty or wrong answer
    assert check_generated("It is 150 EUR.", "expense limit?", []).mode == ABSTAIN
    # a code block is one unit; a figure the question states is supported by it
    checked = check_generated("Run:\n```\nvpn-reset --all\n```\nLimit: 90 EUR.", "is 90 EUR ok?", pairs)
    assert checked.text == "Run:\nLimit: 90 EUR." and checked.held_back == ["vpn-reset --all"]


def test_a_generated_answer_with_nothing_supported_quotes_the_closest_approved_pair_verbatim(db):
    # the demo's expense question: the approved 250 EUR pair retrieved first, its match below the
    # verify threshold, and every sentence the model wrote stated a figure no pair holds; abstaining
    # ("I don't know") hid the right approved answer that was there
    question = "Up to what amount can I expense something without my manager signing off?"
    pairs = top_pairs(db, TEAM, question)
    decision = decide(question, pairs, Thresholds(verify=1.0, abstain=0.0))
    assert decision.mode == GENERATED and pairs[0]["question"] == EXPENSES[0]
    checked = check_generated("You can expense up to 200 EUR. Above 100 EUR your manager signs off.",
                              question, pairs)
    assert checked.text == "" and checked.held_back == ["200", "100"] and checked.mode == CLOSEST
    final = settle(decision, checked)
    assert final.mode == CLOSEST and final.pair["id"] == pairs[0]["id"]
    assert answer_text(final, checked.text) == EXPENSES[1]  # verbatim: 250 EUR, not a garbled figure
    assert closest_label(final.pair) == ("Closest approved answer, not verified for your question: the team "
                                         f"approved it for “{EXPENSES[0]}”")
    # one garbled sentence among supported ones is enough: what is left lacks the figure asked for
    partly = check_generated("Submit the receipt in the Expenses app. It is 200 EUR.", question, pairs)
    assert partly.text == "Submit the receipt in the Expenses app." and partly.mode == CLOSEST
    assert answer_text(settle(decision, partly), partly.text) == EXPENSES[1]
    # nothing held back: the model's answer stands, and settle keeps no pair for it
    kept = settle(decision, check_generated("Your manager approves it above 250 EUR.", question, pairs))
    assert kept.mode == GENERATED and kept.pair is None
    assert answer_text(kept, "Your manager approves it.") == "Your manager approves it."
    # nothing retrieved: nothing to quote, it abstains
    empty = settle(decide(question, [], Thresholds(verify=1.0, abstain=0.0)),
                   check_generated("It is 200 EUR.", question, []))
    assert empty.mode == ABSTAIN and answer_text(empty) == ABSTAIN_TEXT


def test_a_figure_counts_as_grounded_only_in_the_pairs_retrieved_for_this_question(db):
    # the demo's VPN answer said "30 days", and another approved answer held "30": that is no support
    db["candidates"].insert({"team_id": TEAM, "question": "How many days of leave carry over?",
                             "answer": "Up to 30 days carry over to the next year.", "status": "approved",
                             "origin": "manual", "dedup_key": "leave", "created_at": now()})
    question = "how do I reset my VPN password?"
    pairs = top_pairs(db, TEAM, question, k=1)
    assert [p["question"] for p in pairs] == [VPN[0]] and in_approved(db, TEAM, ["30"]) == {"30"}
    checked = check_generated("Run `vpn-reset --user you`. You can also set it to expire after 30 days.",
                              question, pairs)
    assert checked.text == "Run `vpn-reset --user you`." and checked.held_back == ["30"]
    assert held_back_note(checked.held_back) == "left out what the approved answers do not support: 30"
    # names are flagged, not removed (a model may rephrase one)
    assert check_generated("Ask Okta support.", question, pairs).flags == ["Okta"]
    # a rejected pair supports nothing, nor another team's pairs (the eval's wrong-fact rate)
    assert in_approved(db, TEAM, ["75", "250"]) == {"250"}
    assert in_approved(db, "T0OTHER", ["250"]) == set()


def test_calibration_picks_the_lowest_precise_verify_and_the_lowest_ood_safe_abstain():
    # (match, evidence, label): verify is picked on the match, abstain on the evidence
    scored = ([(0.9, 0.9, True)] * 18 + [(0.85, 0.8, False)] + [(0.7, 0.7, True)] * 10
              + [(0.65, 0.6, False)] * 4 + [(0.5, 0.5, True)] * 5 + [(0.4, 0.3, None)] * 16
              + [(0.4, 0.45, None)] * 3 + [(0.55, 0.55, None)])
    points = curve(scored)
    verify, abstain = pick(points)
    at = {p.threshold: p for p in points}
    assert verify == 0.66 and at[0.66].verified_precision == pytest.approx(28 / 29, abs=1e-4)
    assert abstain == 0.46 and at[0.46].ood_abstained == pytest.approx(0.95)
    assert at[0.46].answered_share == 1.0
    assert "| 0.66 |" in table(points, {"verify": verify}) and "verify" in table(points, {"verify": verify})
    # nothing precise enough: verify at the top of the grid
    assert pick(curve([(0.95, 0.95, False), (0.5, 0.5, None)])) == (0.9, 0.52)


def test_the_cli_picks_the_only_workspace_and_names_several(db):
    assert pick_team(db, "T0LOCAL", explicit=False) == TEAM
    assert pick_team(db, "T0LOCAL", explicit=True) == "T0LOCAL"
    db["candidates"].insert({"team_id": "T0B", "question": "q?", "answer": "a", "status": "approved",
                             "origin": "manual", "dedup_key": "b", "created_at": now()})
    db.conn.commit()
    assert pick_team(db, TEAM, explicit=False) == TEAM
    with pytest.raises(CurationError, match=r"2 workspaces \(T0B, T0CORE\).*--team"):
        pick_team(db, "T0LOCAL", explicit=False)
