"""Ack latency and exactly-once storage of live message events, against `threadtune bot`.

Starts ``threadtune bot`` as a process on loopback (with the fake Slack Web API from tests/fakes
for ``auth.test`` and ``users.info``), watches one channel, then sends 2,000 signed ``message``
events from 20 concurrent clients; 5 % of them are sent a second time as Slack retries
(same ``event_id``, ``X-Slack-Retry-Num``). Capture writes before it acks, so every 200 means
stored. It reports the p50/p99 ack latency next to the 100 ms goal, and counts what was stored,
lost and duplicated.

    python bench/events.py [--events 2000] [--clients 20]

Last line: ``{"bench": "events", "p50_ms": …, "p99_ms": …, "stored": …, "duplicates": …, …}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.server import free_port  # noqa: E402
from curation.channels import set_watched  # noqa: E402
from curation.store import connect  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402

TEAM, CHANNEL, SECRET = "T0BENCH", "C0BENCH", "bench-signing-secret"
GOAL_P99_MS = 100.0


def body(i: int, event_id: str) -> str:
    ts = f"{1_700_000_000 + i}.{i % 1_000_000:06d}"
    thread = {"thread_ts": f"{1_700_000_000 + i - i % 10}.{(i - i % 10) % 1_000_000:06d}"} if i % 10 else {}
    return json.dumps({
        "token": "x", "team_id": TEAM, "api_app_id": "A0BENCH", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}],
        "event": {"type": "message", "channel": CHANNEL, "channel_type": "channel",
                  "user": f"U{i % 40:04d}", "text": f"bench message {i}: how do I reset the token?",
                  "ts": ts, "event_ts": ts, **thread},
    })


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"threadtune bot exited: {proc.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return time.monotonic() - start
        except OSError:
            time.sleep(0.01)
    raise SystemExit("threadtune bot did not start listening")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--retry-share", type=float, default=0.05)
    args = parser.parse_args()

    fake = FakeSlack().start()
    fake.add_token("xoxb-bench")
    fake.add_channel(CHANNEL, "bench")
    fake.rate_limits.clear()  # the bench measures the bot's acks, not Slack's rate limits
    for i in range(40):
        fake.add_user(f"U{i:04d}", f"user{i}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        db = connect(data / "threadtune.db")
        set_watched(db, TEAM, CHANNEL, True, "bench", name="bench")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADTUNE_", "SLACK_"))}
        env.update(THREADTUNE_DATA_DIR=str(data), THREADTUNE_SLACK_API_URL=fake.api_url,
                   SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SECRET, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", "threadtune.cli", "bot", "--host",
                                 "127.0.0.1", "--port", str(port)], env=env, cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            startup_s = wait_listening(port, proc)
            startup_cpu_s = cpu_seconds(proc.pid)
            url = f"http://127.0.0.1:{port}/slack/events"
            signer = SignatureVerifier(SECRET)
            rng = random.Random(3)
            plan = [(i, f"EvB{i:07d}", None) for i in range(args.events)]
            retries = [(i, eid, 1) for i, eid, _ in rng.sample(plan, int(args.events * args.retry_share))]
            plan += retries
            rng.shuffle(plan)
            latencies: list[float] = []
            failures: list[str] = []
            lock = threading.Lock()

            def client(chunk: list[tuple[int, str, int | None]]) -> None:
                with httpx.Client(timeout=10) as http:
                    for i, event_id, retry in chunk:
                        raw = body(i, event_id)
                        stamp = str(int(time.time()))
                        headers = {"Content-Type": "application/json",
                                   "X-Slack-Request-Timestamp": stamp,
                                   "X-Slack-Signature": signer.generate_signature(timestamp=stamp, body=raw)}
                        if retry:
                            headers.update({"X-Slack-Retry-Num": str(retry),
                                            "X-Slack-Retry-Reason": "http_timeout"})
                        start = time.perf_counter()
                        resp = http.post(url, content=raw, headers=headers)
                        elapsed = (time.perf_counter() - start) * 1000
                        with lock:
                            latencies.append(elapsed)
                            if resp.status_code != 200:
                                failures.append(f"{event_id}: {resp.status_code}")

            chunks = [plan[k::args.clients] for k in range(args.clients)]
            threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
            wall = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - wall
            bot_cpu_s = cpu_seconds(proc.pid) - startup_cpu_s
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            fake.stop()
        stored = db.execute("select count(*) from messages where team_id = ?", [TEAM]).fetchone()[0]
        distinct = db.execute("select count(distinct text) from messages where team_id = ?",
                              [TEAM]).fetchone()[0]
        db.close()

    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    result = {
        "bench": "events", "events": args.events, "clients": args.clients,
        "retries_sent": len(retries), "requests": len(latencies), "non_200": len(failures),
        "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "p99_vs_goal": round(p99 / GOAL_P99_MS, 3),
        "stored": stored, "lost": args.events - distinct, "duplicates": stored - distinct,
        "events_per_s": round(len(latencies) / wall), "bot_startup_s": round(startup_s, 2),
        "bot_startup_cpu_s": round(startup_cpu_s, 2),
        "bot_cpu_ms_per_request": round(bot_cpu_s * 1000 / len(latencies), 2),
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(f"{len(latencies)} requests from {args.clients} clients in {wall:.2f}s; ack p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms (goal {GOAL_P99_MS:.0f} ms); stored {stored} of {args.events}, "
          f"{result['duplicates']} duplicates, {len(failures)} non-200; bot listening after {startup_s:.2f}s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
