"""The store's schema: sqlite-utils migrations, applied in the order they are registered here.

Every table is keyed by Slack ``team_id`` so that one install can serve several workspaces without
mixing them. A migration's function name is recorded in the file, so a name never changes, and a
new migration is appended at the end. The first four, which create the tables, live in
:mod:`curation.schema_initial`; the ones below add to them.

Tables (columns in the migrations):
- ``channels``, ``users``, ``messages`` (FTS on text), ``events_seen`` (idempotency on event_id)
- ``documents``
- ``candidates`` (Q&A pairs; FTS on question/answer) and ``candidate_sources``
- ``reviews`` (one audit row per review action), ``audit`` (every privileged action)
- ``datasets`` and ``dataset_items``
- ``jobs``, ``models``
- ``answers`` and ``feedback``
- ``workspaces`` (per-team persona prompt)
- ``curated_sources`` (what a curate run has read)
- ``escalations`` (questions the bot abstained on), ``dataset_files`` (where a version was written)
- ``update_budget`` (chat.update calls per workspace in the last minute, shared by every process)
- ``retrieval_changes`` (every change to an approved pair, by trigger: what keeps each process's
  in-memory BM25 index in step, curation.bm25_index)
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from curation.schema_initial import INITIAL

#: Candidate statuses. ``variant`` marks an alternate phrasing of another pair.
CANDIDATE_STATUSES = ("pending", "approved", "rejected", "auto_rejected", "variant")

migrations = Migrations("threadtune")
for _step in INITIAL:  # m001–m004, defined in curation.schema_initial
    migrations()(_step)


@migrations()
def m005_curation_runs(db: Database) -> None:
    # One row per source the curate run has read, with the hash of the text it read, so a rerun
    # skips what is unchanged and re-reads a thread that got new replies or edits.
    db["curated_sources"].create(
        {
            "team_id": str,
            "kind": str,  # thread | announcement | document
            "key": str,  # channel_id:ts, or the document id
            "content_hash": str,
            "n_candidates": int,
            "curated_at": str,
        },
        pk=("team_id", "kind", "key"),
    )
    # When the candidate was posted for review: the daily cap counts these.
    db["candidates"].add_column("review_posted_at", str)


@migrations()
def m006_candidate_question_key(db: Database) -> None:
    # The near-duplicate lookup key (sorted content-word stems, curation.dedup.question_key), indexed
    # so that finding a pair's phrasings stays one index probe at 100k pairs.
    from curation.dedup import question_key

    db["candidates"].add_column("question_key", str)
    for cid, question in db.execute("select id, question from candidates").fetchall():
        db.execute("update candidates set question_key = ? where id = ?", [question_key(question), cid])
    db["candidates"].create_index(["team_id", "question_key"])


@migrations()
def m007_curated_sources_llm(db: Database) -> None:
    # Whether the LLM read the source: a run without one (deterministic thread pairs only) must not
    # hide documents, announcements and threads from the next run that has one.
    db["curated_sources"].add_column("llm", int, not_null_default=1)


@migrations()
def m008_escalations(db: Database) -> None:
    # A question the bot abstained on, posted to the review channel as an open question: the first
    # expert reply in that thread becomes a candidate pair (origin "escalation"), and when it is
    # approved the asker is told in their own thread.
    db["escalations"].create(
        {
            "id": int,
            "team_id": str,
            "channel_id": str,  # where the question was asked
            "thread_ts": str,  # the asker's thread (the answer to it is posted there)
            "user_id": str,  # the asker
            "question": str,
            "answer_id": int,  # the bot's abstaining reply (answers.id)
            "review_channel": str,
            "review_ts": str,  # the open question's post in the review channel
            "candidate_id": int,  # from the first expert reply
            "status": str,  # open | answered | notified
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        defaults={"status": "open"},
    )
    db["escalations"].create_index(["team_id", "review_channel", "review_ts"])
    db["escalations"].create_index(["team_id", "candidate_id"])


@migrations()
def m009_privacy(db: Database) -> None:
    # Visibility: an admin may mark a private channel as shared (its pairs answer anywhere) and as
    # trainable (its pairs go into datasets, and so into every answer of a model trained on them).
    db["channels"].add_column("shared", int, not_null_default=0)
    db["channels"].add_column("trainable", int, not_null_default=0)
    # Erasure: a frozen version that held erased text is superseded, its items redacted.
    db["datasets"].add_column("superseded_at", str)
    db["datasets"].add_column("superseded_reason", str)
    # Every file a dataset version was written to, so that erasure can remove them.
    db["dataset_files"].create(
        {"id": int, "team_id": str, "dataset_id": str, "path": str, "created_at": str},
        pk="id",
    )
    db["dataset_files"].create_index(["dataset_id"])


@migrations()
def m010_review_operator(db: Database) -> None:
    # Who typed a command that acted as someone else (`threadtune review approve 1 --as U…`):
    # the audit says "operator X acting as U", and a quorum counts distinct people.
    db["reviews"].add_column("operator", str)


@migrations()
def m011_update_budget(db: Database) -> None:
    # Slack's chat.update budget per workspace (curation.update_budget): one row per update in the
    # last minute, taken in one BEGIN IMMEDIATE transaction by whichever process edits a message,
    # so that the bot and the worker together stay under the workspace's Tier 3 limit.
    db["update_budget"].create({"team_id": str, "at": float})
    db["update_budget"].create_index(["team_id", "at"])


@migrations()
def m012_retrieval_changes(db: Database) -> None:
    # Each process ranks approved pairs with an in-memory BM25 index (curation.bm25_index); these
    # triggers log every change that can add a pair to it, take one out of it or change its text,
    # so that each lookup first applies what changed since its index last looked, in any process.
    db["retrieval_changes"].create({"seq": int, "team_id": str, "candidate_id": int}, pk="seq")
    db["retrieval_changes"].create_index(["team_id", "seq"])
    log = "insert into retrieval_changes (team_id, candidate_id) values ({row}.team_id, {row}.id);"
    db.execute("create trigger candidates_retrieval_insert after insert on candidates "
               f"when new.status = 'approved' begin {log.format(row='new')} end")
    db.execute("create trigger candidates_retrieval_update after update of status, stale, question, "
               "answer, team_id on candidates when old.status = 'approved' or new.status = 'approved' "
               "begin insert into retrieval_changes (team_id, candidate_id) select old.team_id, old.id "
               f"where old.team_id is not new.team_id; {log.format(row='new')} end")
    db.execute("create trigger candidates_retrieval_delete after delete on candidates "
               f"when old.status = 'approved' begin {log.format(row='old')} end")
