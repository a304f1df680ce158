"""Soak: a bounded storm of mixed Slack events against a running `threadtune bot` and `threadtune worker`.

Sends ``--events`` signed events (new messages, thread replies, edits, deletes, reactions added and
removed, and Slack-style retries of the same event_id) from ``--clients`` concurrent clients over
loopback only, then checks the store against the state the events imply.

Each client owns its own channels, so the order of events within a channel is the order they were
sent, and the expected end state is exact. The last line is JSON:
``{"bench": "soak", "events_sent", "stored", "expected", "duplicates", "lost", "wrong_text",
"p50_ack_ms", "p99_ack_ms", "errors"}``. Goal: zero lost, zero duplicates, p99 ack under 200 ms.

    python bench/soak.py [--events 5000] [--clients 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
from tests.fakes.slack import BOT_TOKENS, TEAM_ID, FakeSlack  # noqa: E402

SECRET = "soak-secret"


def plan(n_events: int, n_channels: int, seed: int = 7) -> tuple[dict[str, list[dict]], dict]:
    """Per-channel event scripts and the expected final state {(channel, ts): text or None}."""
    rng = random.Random(seed)
    scripts: dict[str, list[dict]] = {f"CSOAK{c:03d}": [] for c in range(n_channels)}
    expected: dict[tuple[str, str], str | None] = {}
    reactions: dict[tuple[str, str], set[str]] = {}
    alive: dict[str, list[str]] = {c: [] for c in scripts}
    clock = {c: 1_700_000_000 + i * 100_000 for i, c in enumerate(scripts)}
    count = 0
    while count < n_events:
        channel = rng.choice(list(scripts))
        script, live = scripts[channel], alive[channel]
        roll = rng.random()
        if roll < 0.45 or not live:
            clock[channel] += 1
            ts = f"{clock[channel]}.000100"
            thread = rng.choice(live) if live and rng.random() < 0.4 else None
            text = f"soak message {count} in {channel} " + "word " * rng.randint(1, 30)
            script.append({"kind": "message", "ts": ts, "text": text, "thread_ts": thread})
            expected[(channel, ts)] = text
            live.append(ts)
        elif roll < 0.60:
            ts = rng.choice(live)
            text = f"edited {count}: " + expected[(channel, ts)][:40]
            script.append({"kind": "edit", "ts": ts, "text": text, "edited_ts": f"{clock[channel]}.9{count:05d}"})
            expected[(channel, ts)] = text
        elif roll < 0.70:
            ts = live.pop(rng.randrange(len(live)))
            script.append({"kind": "delete", "ts": ts})
            expected[(channel, ts)] = None
        elif roll < 0.88:
            ts = rng.choice(live)
            user = f"U{rng.randint(1, 5):04d}"
            added = user not in reactions.setdefault((channel, ts), set()) or rng.random() < 0.2
            script.append({"kind": "reaction", "ts": ts, "user": user, "added": added})
            (reactions[(channel, ts)].add if added else reactions[(channel, ts)].discard)(user)
        else:
            if not script:
                continue
            script.append({"kind": "retry", "of": len(script) - 1})
        count += 1
    return scripts, expected


def event_for(channel: str, step: dict) -> dict:
    kind = step["kind"]
    if kind == "message":
        event = {"type": "message", "channel": channel, "user": "U0001", "text": step["text"],
                 "ts": step["ts"], "channel_type": "channel", "event_ts": step["ts"]}
        if step["thread_ts"]:
            event["thread_ts"] = step["thread_ts"]
        return event
    if kind == "edit":
        return {"type": "message", "subtype": "message_changed", "channel": channel, "channel_type": "channel",
                "ts": step["edited_ts"], "hidden": True,
                "message": {"type": "message", "user": "U0001", "text": step["text"], "ts": step["ts"],
                            "edited": {"user": "U0001", "ts": step["edited_ts"]}}}
    if kind == "delete":
        return {"type": "message", "subtype": "message_deleted", "channel": channel, "hidden": True,
                "deleted_ts": step["ts"], "ts": step["ts"] + "1", "channel_type": "channel"}
    return {"type": "reaction_added" if step["added"] else "reaction_removed", "user": step["user"],
            "reaction": "eyes", "item": {"type": "message", "channel": channel, "ts": step["ts"]},
            "event_ts": str(time.time())}


def run_client(url: str, channels: list[str], scripts: dict, latencies: list, errors: list) -> None:
    """Send every channel's script in order over one keep-alive connection, timing each ack."""
    verifier = SignatureVerifier(SECRET)
    with httpx.Client(timeout=30) as http:
        for channel in channels:
            sent: list[tuple[str, dict]] = []
            for i, step in enumerate(scripts[channel]):
                headers = {"Content-Type": "application/json"}
                if step["kind"] == "retry":
                    event_id, event = sent[min(step["of"], len(sent) - 1)]
                    headers.update({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
                else:
                    event_id, event = f"Ev{channel}{i:06d}", event_for(channel, step)
                sent.append((event_id, event))
                body = json.dumps({"token": "t", "team_id": TEAM_ID, "api_app_id": "A0FAKE", "event": event,
                                   "type": "event_callback", "event_id": event_id,
                                   "event_time": int(time.time())})
                ts = str(int(time.time()))
                headers.update({"X-Slack-Request-Timestamp": ts,
                                "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body)})
                t = time.perf_counter()
                resp = http.post(url, content=body.encode(), headers=headers)
                latencies.append((time.perf_counter() - t) * 1000)
                if resp.status_code != 200:
                    errors.append(resp.status_code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    if args.events > 50_000:
        parser.error("--events is capped at 50000: this is a bounded storm")

    fake = FakeSlack().start()
    data = Path(tempfile.mkdtemp(prefix="threadtune-soak-"))
    db = connect(data / "threadtune.db")
    scripts, expected = plan(args.events, args.clients)
    fake.rate_limits.clear()  # the storm measures the bot and the store, not Slack's rate limits
    for channel in scripts:
        set_watched(db, TEAM_ID, channel, True, by="soak", name=channel.lower())
        fake.add_channel(channel, channel.lower())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADTUNE_", "SLACK_"))}
    env.update({"THREADTUNE_DATA_DIR": str(data), "THREADTUNE_TEAM_ID": TEAM_ID, "SLACK_BOT_TOKEN": BOT_TOKENS[0],
                "SLACK_SIGNING_SECRET": SECRET, "THREADTUNE_SLACK_API_URL": fake.api_url,
                "HF_HUB_OFFLINE": "1"})
    port = free_port()
    cli = [sys.executable, "-m", "threadtune.cli"]
    # The bot's log goes to a file: an unread pipe fills up and then blocks the bot mid-request.
    bot_log = (data / "bot.log").open("w+")
    procs = [subprocess.Popen(cli + ["bot", "--port", str(port), "--host", "127.0.0.1"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=bot_log, text=True),
             subprocess.Popen(cli + ["worker"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    bot_log.seek(0)
                    raise SystemExit(f"bot did not start: {bot_log.read()[-3000:]}")
                time.sleep(0.1)
        latencies: list[float] = []
        errors: list[int] = []
        channels = list(scripts)
        groups = [channels[i::args.clients] for i in range(args.clients)]
        threads = [threading.Thread(target=run_client, args=(url, g, scripts, latencies, errors))
                   for g in groups if g]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        elapsed = time.perf_counter() - start
        time.sleep(0.5)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        fake.stop()

    rows = {(r[0], r[1]): (r[2], r[3], r[4]) for r in db.execute(
        "select channel_id, ts, text, deleted, count(*) over (partition by channel_id, ts) from messages "
        "where team_id = ?", [TEAM_ID])}
    lost = sum(1 for key, text in expected.items() if text is not None and key not in rows)
    wrong = sum(1 for key, text in expected.items()
                if key in rows and ((text is None) != bool(rows[key][1]) or (text is not None and rows[key][0] != text)))
    dupes = sum(1 for v in rows.values() if v[2] > 1)
    reaction_dupes = 0
    for (raw,) in db.execute("select reactions from messages where reactions is not null"):
        for r in json.loads(raw):
            reaction_dupes += len(r.get("users", [])) - len(set(r.get("users", [])))
    lat = sorted(latencies)
    result = {
        "bench": "soak", "events_sent": len(latencies), "seconds": round(elapsed, 2),
        "expected": sum(1 for t in expected.values() if t is not None),
        "stored": sum(1 for v in rows.values() if not v[1]),
        "duplicates": dupes + reaction_dupes, "lost": lost, "wrong_text": wrong,
        "p50_ack_ms": round(statistics.median(lat), 2) if lat else None,
        "p99_ack_ms": round(lat[int(len(lat) * 0.99) - 1], 2) if lat else None,
        "errors": len(errors),
    }
    print(f"{result['events_sent']} events in {elapsed:.1f}s from {args.clients} clients; "
          f"lost {lost}, duplicates {result['duplicates']}, wrong text {wrong}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
