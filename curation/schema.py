"""The store's schema: sqlite-utils migrations, applied in the order they are defined here.

Every table is keyed by Slack ``team_id`` so that one install can serve several workspaces without
mixing them. A migration's function name is recorded in the file, so a name never changes, and a
new migration is appended at the end.

Tables (columns in the migrations below):
- ``channels``, ``users``, ``messages`` (FTS on text), ``events_seen`` (idempotency on event_id)
- ``documents``
- ``candidates`` (Q&A pairs; FTS on question/answer) and ``candidate_sources``
- ``reviews`` (one audit row per review action), ``audit`` (every privileged action)
- ``datasets`` and ``dataset_items``
- ``jobs``, ``models``
- ``answers`` and ``feedback``
- ``workspaces`` (per-team persona prompt)
- ``curated_sources`` (what a curate run has read)
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

#: Candidate statuses. ``variant`` marks an alternate phrasing of another pair.
CANDIDATE_STATUSES = ("pending", "approved", "rejected", "auto_rejected", "variant")

migrations = Migrations("threadtune")


@migrations()
def m001_slack(db: Database) -> None:
    db["workspaces"].create(
        {"team_id": str, "name": str, "system_prompt": str, "created_at": str}, pk="team_id"
    )
    db["channels"].create(
        {
            "team_id": str,
            "id": str,
            "name": str,
            "watched": int,
            "is_private": int,
            "is_im": int,
            "watched_by": str,
            "created_at": str,
        },
        pk=("team_id", "id"),
        defaults={"watched": 0, "is_private": 0, "is_im": 0},
    )
    db["users"].create(
        {
            "team_id": str,
            "id": str,
            "name": str,
            "real_name": str,
            "display_name": str,
            "is_bot": int,
            "deleted": int,
            "updated_at": str,
        },
        pk=("team_id", "id"),
        defaults={"is_bot": 0, "deleted": 0},
    )
    db["messages"].create(
        {
            "team_id": str,
            "channel_id": str,
            "ts": str,
            "thread_ts": str,  # NULL for a top-level message without replies
            "user_id": str,
            "text": str,
            "subtype": str,
            "bot_id": str,
            "reply_count": int,
            "answered": int,  # 1 when the "answered" reaction marks this reply
            "reactions": str,  # JSON list of {name, users, count}
            "edited_ts": str,
            "deleted": int,
            "deleted_at": str,
            "source": str,  # event | backfill | import
            "created_at": str,
            "updated_at": str,
        },
        pk=("team_id", "channel_id", "ts"),
        defaults={"answered": 0, "deleted": 0, "reply_count": 0},
    )
    db["messages"].create_index(["team_id", "channel_id", "thread_ts"])
    db["messages"].create_index(["team_id", "user_id"])
    db["messages"].enable_fts(["text"], create_triggers=True, tokenize="porter")
    db["events_seen"].create(
        {"event_id": str, "team_id": str, "received_at": str}, pk="event_id"
    )


@migrations()
def m002_curation(db: Database) -> None:
    db["documents"].create(
        {
            "id": int,
            "team_id": str,
            "title": str,
            "path": str,
            "kind": str,  # markdown | text | announcement
            "text": str,
            "sha256": str,
            "deleted": int,
            "created_at": str,
        },
        pk="id",
        defaults={"deleted": 0},
    )
    db["documents"].create_index(["team_id", "sha256"], unique=True)
    db["candidates"].create(
        {
            "id": int,
            "team_id": str,
            "question": str,
            "answer": str,
            "evidence": str,
            "status": str,
            "variant_of": int,  # id of the pair this is a phrasing of
            "scores": str,  # JSON {check: {score, reason}}
            "reject_reason": str,
            "prompt_version": str,
            "origin": str,  # thread | deterministic | document | announcement | manual | feedback | import
            "scrub_count": int,
            "approvals": str,  # JSON list of user ids (quorum)
            "stale": int,  # 1 when a source was deleted or forgotten
            "stale_reason": str,
            "dedup_key": str,  # idempotency key for re-runs of curation
            "review_channel": str,
            "review_ts": str,
            "created_by": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        defaults={"status": "pending", "scrub_count": 0, "stale": 0, "approvals": "[]"},
        foreign_keys=[("variant_of", "candidates", "id")],
    )
    db["candidates"].create_index(["team_id", "status"])
    db["candidates"].create_index(["team_id", "dedup_key"], unique=True)
    db["candidates"].create_index(["team_id", "review_channel", "review_ts"])
    db["candidates"].enable_fts(["question", "answer"], create_triggers=True, tokenize="porter")
    db["candidate_sources"].create(
        {
            "id": int,
            "team_id": str,
            "candidate_id": int,
            "kind": str,  # message | document
            "channel_id": str,
            "ts": str,
            "document_id": int,
            "permalink": str,
        },
        pk="id",
        foreign_keys=[("candidate_id", "candidates", "id")],
    )
    db["candidate_sources"].create_index(["team_id", "channel_id", "ts"])
    db["candidate_sources"].create_index(["candidate_id"])
    db["reviews"].create(
        {
            "id": int,
            "team_id": str,
            "candidate_id": int,
            "actor": str,
            "action": str,  # approve | edit | reject | auto_reject | import_approved | stale
            "before": str,
            "after": str,
            "reason": str,
            "via": str,  # slack | cli | reaction | system
            "at": str,
        },
        pk="id",
        foreign_keys=[("candidate_id", "candidates", "id")],
    )
    db["reviews"].create_index(["team_id", "candidate_id"])
    db["audit"].create(
        {
            "id": int,
            "team_id": str,
            "actor": str,
            "action": str,
            "target": str,
            "detail": str,
            "via": str,
            "at": str,
        },
        pk="id",
    )
    db["audit"].create_index(["team_id", "at"])


@migrations()
def m003_datasets_models_jobs(db: Database) -> None:
    db["datasets"].create(
        {
            "id": str,  # content hash
            "team_id": str,
            "version": int,
            "name": str,  # v1, v2 …
            "system_prompt": str,
            "n_train": int,
            "n_eval": int,
            "meta": str,
            "created_by": str,
            "created_at": str,
        },
        pk="id",
    )
    db["datasets"].create_index(["team_id", "version"], unique=True)
    db["dataset_items"].create(
        {
            "id": int,
            "dataset_id": str,
            "team_id": str,
            "candidate_id": int,
            "split": str,  # train | eval
            "kind": str,  # pair | variant
            "question": str,
            "answer": str,
        },
        pk="id",
        foreign_keys=[("dataset_id", "datasets", "id")],
    )
    db["dataset_items"].create_index(["dataset_id", "split"])
    db["jobs"].create(
        {
            "id": int,
            "team_id": str,
            "kind": str,  # curate | train | eval
            "status": str,  # queued | running | done | failed | cancelled | interrupted
            "args": str,
            "result": str,
            "error": str,
            "progress": str,  # JSON {step, total, loss, tokens_per_s, eta_s}
            "pid": int,
            "worker": str,
            "heartbeat_at": str,
            "cancel_requested": int,
            "slack_channel": str,
            "slack_ts": str,
            "created_by": str,
            "created_at": str,
            "started_at": str,
            "finished_at": str,
        },
        pk="id",
        defaults={"status": "queued", "cancel_requested": 0},
    )
    db["jobs"].create_index(["status"])
    db["models"].create(
        {
            "id": int,
            "team_id": str,
            "version": int,
            "name": str,  # v1, v2 …
            "base_model": str,
            "adapter_path": str,
            "dataset_id": str,
            "job_id": int,
            "parent": str,  # the model name it was trained after (lineage)
            "config": str,
            "metrics": str,
            "status": str,  # candidate | live | retired
            "created_at": str,
            "promoted_at": str,
        },
        pk="id",
        defaults={"status": "candidate"},
    )
    db["models"].create_index(["team_id", "version"], unique=True)


@migrations()
def m004_answers(db: Database) -> None:
    db["answers"].create(
        {
            "id": int,
            "team_id": str,
            "channel_id": str,
            "thread_ts": str,
            "ts": str,  # the bot's reply
            "user_id": str,
            "question": str,
            "answer": str,
            "model": str,
            "sources": str,  # JSON list of {candidate_id, permalink}
            "verified": int,
            "latency_s": float,
            "error": str,
            "created_at": str,
        },
        pk="id",
        defaults={"verified": 0},
    )
    db["answers"].create_index(["team_id", "channel_id", "ts"])
    db["feedback"].create(
        {
            "id": int,
            "team_id": str,
            "answer_id": int,
            "user_id": str,
            "rating": int,  # +1 | -1
            "correction": str,
            "candidate_id": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("answer_id", "answers", "id")],
    )
    db["feedback"].create_index(["answer_id", "user_id"], unique=True)


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
