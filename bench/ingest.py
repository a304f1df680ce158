"""Export import throughput against plain ``sqlite3.executemany``, side by side in one run.

Generates a synthetic Slack export (channels.json, users.json, <channel>/<day>.json; threads,
reactions, edits and some noise) and imports it with ``threadtune import``'s code path: reading
and parsing the JSON, the idempotent upsert, and full-text search maintained. Side by side, it
inserts the same (already parsed) rows with plain ``sqlite3.executemany`` in one transaction into
a fresh store with the same tables and indexes but no full-text search: ``ratio`` is our
throughput over that. A third figure runs the same executemany with the store's per-row FTS
triggers in place, which is what a naive import would cost. Times are the best of ``--repeat``.

    python bench/ingest.py --messages 200000

Last line: ``{"bench": "ingest", "messages_per_s": …, "raw_sqlite_messages_per_s": …, "ratio": …}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.rows import MESSAGE_COLUMNS, message_row, skip_reason  # noqa: E402
from curation.slack_export import import_export  # noqa: E402
from curation.store import connect  # noqa: E402

WORDS = ("how do I reset the vpn token after the password change error when connecting from home "
         "office laptop docker build cache fails with permission denied try clearing the cache and "
         "restarting the daemon thanks that worked julia dataframe plot makie gpu kernel").split()


def generate(root: Path, n_messages: int, seed: int = 7) -> list[tuple[str, dict]]:
    """Write the export under ``root``; returns ``(channel_id, message)`` for every message."""
    rng = random.Random(seed)
    channels = [{"id": f"C{i:05d}", "name": f"support-{i}"} for i in range(20)]
    users = [{"id": f"U{i:05d}", "name": f"user{i}", "real_name": f"User {i}",
              "profile": {"display_name": f"user{i}"}} for i in range(300)]
    root.mkdir(parents=True)
    (root / "channels.json").write_text(json.dumps(channels))
    (root / "users.json").write_text(json.dumps(users))
    out: list[tuple[str, dict]] = []
    per_channel = n_messages // len(channels)
    for ch in channels:
        folder = root / ch["name"]
        folder.mkdir()
        t = 1_600_000_000.0
        day: list[dict] = []
        day_no = 0
        made = 0
        while made < per_channel:
            t += rng.uniform(30, 600)
            parent = {"type": "message", "user": rng.choice(users)["id"], "ts": f"{t:.6f}",
                      "text": " ".join(rng.choices(WORDS, k=rng.randint(5, 40))) + "?"}
            n_replies = min(rng.choice((0, 0, 1, 2, 3, 5, 8)), per_channel - made - 1)
            msgs = [parent]
            if n_replies > 0:
                parent.update(thread_ts=parent["ts"], reply_count=n_replies)
                for _ in range(n_replies):
                    t += rng.uniform(5, 120)
                    reply = {"type": "message", "user": rng.choice(users)["id"], "ts": f"{t:.6f}",
                             "thread_ts": parent["ts"],
                             "text": " ".join(rng.choices(WORDS, k=rng.randint(3, 60)))}
                    if rng.random() < 0.1:
                        reply["reactions"] = [{"name": "white_check_mark", "users": [parent["user"]],
                                               "count": 1}]
                    if rng.random() < 0.05:
                        reply["edited"] = {"user": reply["user"], "ts": f"{t + 30:.6f}"}
                    msgs.append(reply)
            if rng.random() < 0.02:
                msgs.append({"type": "message", "subtype": "channel_join", "user": parent["user"],
                             "ts": f"{t + 1:.6f}", "text": "joined"})
            day += msgs
            made += len(msgs)
            if len(day) >= 400:
                (folder / f"{2020 + day_no // 365}-{(day_no // 28) % 12 + 1:02d}-{day_no % 28 + 1:02d}.json"
                 ).write_text(json.dumps(day))
                day_no += 1
                day = []
        if day:
            (folder / f"2030-01-{day_no % 28 + 1:02d}.json").write_text(json.dumps(day))
        out += [(ch["id"], m) for m in sorted(
            (m for f in folder.iterdir() for m in json.loads(f.read_text())), key=lambda m: m["ts"])]
    return out


def raw_insert(db_path: Path, rows: list[tuple], *, fts: bool) -> float:
    """Seconds to insert ``rows`` with plain executemany in one transaction."""
    connect(db_path).close()  # the store's schema: same indexes, FTS triggers included
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if not fts:
        for (name,) in conn.execute("select name from sqlite_master where type = 'trigger' and "
                                    "tbl_name = 'messages'").fetchall():
            conn.execute(f"drop trigger {name}")
    sql = f"insert into messages ({', '.join(MESSAGE_COLUMNS)}) values ({', '.join('?' for _ in MESSAGE_COLUMNS)})"
    start = time.perf_counter()
    with conn:
        conn.executemany(sql, rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs per side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        messages = generate(tmp_path / "export", args.messages)
        rows = [message_row("T0BENCH", ch, m, "import") for ch, m in messages if not skip_reason(m)]
        n = len(rows)

        ours, rerun = float("inf"), 0.0
        for k in range(args.repeat):
            db = connect(tmp_path / f"threadtune{k}.db")
            start = time.perf_counter()
            summary = import_export(db, tmp_path / "export", "T0BENCH")
            ours = min(ours, time.perf_counter() - start)
            stored = db.execute("select count(*) from messages").fetchone()[0]
            indexed = db.execute("select count(*) from messages_fts_docsize").fetchone()[0]
            assert stored == n == summary.messages, (stored, n, summary.messages)
            assert indexed == n, f"FTS holds {indexed} of {n} rows"
            if k == 0:
                start = time.perf_counter()
                assert import_export(db, tmp_path / "export", "T0BENCH").new_messages == 0
                rerun = time.perf_counter() - start
            db.close()
        bare = min(raw_insert(tmp_path / f"bare{k}.db", rows, fts=False) for k in range(args.repeat))
        triggers = raw_insert(tmp_path / "triggers.db", rows, fts=True)

    result = {
        "bench": "ingest",
        "messages": n,
        "messages_per_s": round(n / ours),
        "raw_sqlite_messages_per_s": round(n / bare),
        "ratio": round(bare / ours, 3),
        "raw_sqlite_fts_triggers_messages_per_s": round(n / triggers),
        "ratio_vs_fts_triggers": round(triggers / ours, 3),
        "rerun_s": round(rerun, 2),
        "import_s": round(ours, 2),
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(f"threadtune import: {n} messages in {ours:.2f}s ({n / ours:,.0f}/s; JSON parsing and FTS "
          f"included); plain executemany without FTS: {bare:.2f}s ({n / bare:,.0f}/s), ratio "
          f"{bare / ours:.2f}; executemany with per-row FTS triggers: {triggers:.2f}s; idempotent "
          f"rerun: {rerun:.2f}s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
