"""The store's first schema: the tables the first four migrations create.

An applied migration never changes (its name is recorded in every store file), so these functions
are frozen; :mod:`curation.schema` registers them first, in this order, and every later change is a
new migration appended there.
"""

from __future__ import annotations

from sqlite_utils import Database


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


#: The first migrations, in the order they are applied.
INITIAL = (m001_slack, m002_curation, m003_datasets_models_jobs, m004_answers)
