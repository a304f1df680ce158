"""Erasure that reaches the bytes: a unique token goes in through every path (a message, a thread
reply, the FAQ modal, a 👎 correction, a document), travels into candidates, reviews, a frozen
dataset and an exported file, is erased (Slack deletions, forget, remove-doc), and is then found in
no byte of the ``.db``, the ``-wal`` or anything else in the data dir."""

from __future__ import annotations

import json
from pathlib import Path

from curation.candidates import add_candidate
from curation.channels import set_watched
from curation.curate import curate
from curation.datasets import create_dataset, export_rows, record_export, write_jsonl
from curation.documents import add_document
from curation.erasure import erase_document, erase_residue
from curation.review import approve
from curation.store import now
from tests.conftest import ADMIN
from tests.fakes.wait import eventually

T = "T0FAKE"
# Tokens that share no four-letter prefix with each other or with English words, and end in a
# digit (the porter stemmer leaves them whole): FTS5 stores a term as "prefix shared with the
# previous term" + the rest, so the needle checked below is the token less its first three letters.
TOKENS = {"message": "vqjxmsg4817", "reply": "wqkxrep4817", "faq": "yqlxfaq4817",
          "correction": "zqmxcor4817", "document": "kqnxdoc4817"}
KEEP = "cqpxkeep4817"  # stays: proves the scan sees what is there


def holders(data_dir: Path, token: str) -> list[str]:
    """Files under ``data_dir`` whose bytes hold ``token`` (any case, or its tail as FTS5 keeps it)."""
    needles = (token.encode(), token[3:].encode())
    found = []
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes().lower()
            if any(n in data for n in needles):
                found.append(path.name)
    return found


def react(bot, ts: str) -> None:
    bot.event({"type": "reaction_added", "user": "U0ASKER", "reaction": "white_check_mark",
               "item": {"type": "message", "channel": "C1", "ts": ts}, "event_ts": ts})


def deleted(bot, ts: str) -> None:
    bot.event({"type": "message", "subtype": "message_deleted", "channel": "C1", "hidden": True,
               "deleted_ts": ts, "ts": f"{float(ts) + 900:.6f}", "channel_type": "channel"})


def test_erased_text_is_in_no_byte_of_the_data_dir(bot, fake_slack, db, settings, tmp_path):
    set_watched(db, T, "C1", True, ADMIN)
    # a message (the root of a thread) and a thread reply, curated into deterministic pairs
    bot.message("C1", "U0ALICE", f"How do I unlock {TOKENS['message']} on the build server?",
                "1700000001.000100")
    bot.message("C1", "U0BOB", f"Run the unlock script from the wiki page {KEEP}.",
                "1700000002.000100", thread_ts="1700000001.000100")
    bot.message("C1", "U0BOB", "Where is the staging proxy configured?", "1700000003.000100")
    bot.message("C1", "U0CAROL", f"In the {TOKENS['reply']} file under the proxy folder.",
                "1700000004.000100", thread_ts="1700000003.000100")
    react(bot, "1700000002.000100")
    react(bot, "1700000004.000100")
    assert eventually(lambda: db.execute("select count(*) from messages where answered = 1")
                      .fetchone()[0] == 2)
    assert sum(curate(db, T, None).candidates.values()) == 2
    # the FAQ modal
    bot.view_submission("faq_modal", {
        "question": {"question": {"type": "plain_text_input", "value": f"What is the {TOKENS['faq']} policy?"}},
        "answer": {"answer": {"type": "plain_text_input", "value": "Ask the security team for the policy."}}},
        user_id="U0DAVE", private_metadata=json.dumps({"channel": "C1", "sources": []}))
    # a 👎 correction of an answer the bot gave
    db["answers"].insert({"id": 1, "team_id": T, "channel_id": "C1", "thread_ts": "1700000005.000100",
                          "ts": "1700000006.000100", "user_id": "U0ERIN", "model": "base",
                          "question": "How do I renew the web certificate?", "answer": "Ask IT.",
                          "sources": "[]", "verified": 0, "created_at": now()})
    bot.block_action("answer_down", "1", user_id="U0ERIN", channel="C1", message_ts="1700000006.000100")
    view = fake_slack.wait_for("views.open")[0].params["view"]
    modal = json.loads(view) if isinstance(view, str) else view
    bot.view_submission("answer_correction", {"correction": {"text": {
        "type": "plain_text_input", "value": f"Run the renewal with the {TOKENS['correction']} profile."}}},
        user_id="U0ERIN", private_metadata=modal["private_metadata"])
    # a document
    doc_file = tmp_path / "runbook.md"
    doc_file.write_text(f"# Runbook\n\nThe backup key is kept in the {TOKENS['document']} vault.\n")
    doc = add_document(db, T, doc_file, actor=ADMIN)
    add_candidate(db, T, "Where is the backup key kept?", f"In the {TOKENS['document']} vault.",
                  origin="document", sources=[{"kind": "document", "document_id": doc["id"]}])
    assert eventually(lambda: db["candidates"].count == 5)
    # approved (review snapshots), frozen into a version, exported into the data dir
    for (cid,) in db.execute("select id from candidates where status = 'pending'").fetchall():
        approve(db, T, cid, ADMIN)
    ds = create_dataset(db, T, created_by=ADMIN)
    export = settings.data_dir / "exports" / "v1.jsonl"
    export.parent.mkdir()
    write_jsonl(export_rows(db, T, ds["name"], split="all"), export)
    record_export(db, T, ds["id"], export)
    data_dir = settings.data_dir
    for token in TOKENS.values():
        assert holders(data_dir, token), f"{token} never reached the store: the test proves nothing"

    deleted(bot, "1700000001.000100")  # the message (a thread root)
    deleted(bot, "1700000004.000100")  # the thread reply
    for user in ("U0DAVE", "U0ERIN"):  # the FAQ author and the corrector
        bot.command("/threadtune", f"forget <@{user}>", user_id=ADMIN,
                    response_url=fake_slack.response_url(f"forget-{user}"))
    fake_slack.wait_for("response_url", 2)
    erase_document(db, T, doc["id"], actor=ADMIN)
    erase_residue(db)

    eventually(lambda: not any(holders(data_dir, t) for t in TOKENS.values()),
               what=lambda: {path: holders(data_dir, t) for path, t in TOKENS.items() if holders(data_dir, t)})
    assert "threadtune.db" in holders(data_dir, KEEP)
    assert not export.exists()
    superseded = db.execute("select superseded_at from datasets where id = ?", [ds["id"]]).fetchone()[0]
    assert superseded
    assert db.execute("select count(*) from audit where action = 'dataset.supersede'").fetchone()[0] >= 1
    assert db.execute("select count(*) from candidates where stale = 1").fetchone()[0] == 5


def test_text_edited_away_is_in_no_byte_of_the_data_dir(bot, db, settings):
    """Someone pastes a secret and edits it out: the old text leaves the store, its full-text index
    segments and the WAL, as a deletion's does."""
    set_watched(db, T, "C1", True, ADMIN)
    secret = "pqrxsecret4817"
    bot.message("C1", "U0ALICE", f"the staging password is {secret}, log in with {KEEP}", "1700000001.000100")
    assert eventually(lambda: holders(settings.data_dir, secret), what="the secret stored")
    bot.event({"type": "message", "subtype": "message_changed", "channel": "C1", "channel_type": "channel",
               "ts": "1700000009.000100",
               "message": {"type": "message", "user": "U0ALICE", "text": f"ask me for the password; log in with {KEEP}",
                           "ts": "1700000001.000100", "edited": {"user": "U0ALICE", "ts": "1700000009.000000"}}})
    eventually(lambda: not holders(settings.data_dir, secret),
               what=lambda: f"the edited-away text still in {holders(settings.data_dir, secret)}")
    assert "threadtune.db" in holders(settings.data_dir, KEEP)
