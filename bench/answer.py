"""Mention-to-placeholder vs mention-to-answer latency through the real bot, in one run.

The bot (bolt over uvicorn, signed requests) talks to the fake Slack on loopback and answers from
a scripted OpenAI-compatible server that streams its words with a small delay, so that the figure
is the bot's own overhead plus a known generation time. Goal: p99 to the placeholder under 1 s.

    python bench/answer.py [--mentions 40] [--token-delay 0.01] [--model-url URL --model-name NAME]

``--model-url`` points the bot at a real server (e.g. `threadtune serve`) instead. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q * (len(values) - 1))))], 4)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mentions", type=int, default=40)
    p.add_argument("--gap", type=float, default=0.05, help="seconds between mentions")
    p.add_argument("--token-delay", type=float, default=0.01, help="fake model: seconds per streamed word")
    p.add_argument("--model-url", help="a real OpenAI-compatible server instead of the scripted one")
    args = p.parse_args()

    from bot.app import build_app
    from bot.server import running
    from curation.store import connect
    from tests.fakes.signed import SlackSender
    from tests.fakes.slack import FakeSlack
    from tests.fakes.llm import FakeLLM
    from threadtune.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-answer-"))
    fake = FakeSlack().start()
    fake.add_token("xoxb-bench")
    fake.add_channel("C0BENCH", "bench")
    fake.rate_limits.clear()  # the bench measures the bot, not Slack's per-channel and Tier 3 limits
    llm = FakeLLM("Open Settings, then Security, then Reset password; you get an email within a minute.").start()
    llm.token_delay_s = args.token_delay
    settings = Settings(_env_file=None, data_dir=tmp, team_id="T0FAKE", slack_bot_token="xoxb-bench",
                        slack_signing_secret="bench-secret", slack_api_url=fake.api_url,
                        serving_url=args.model_url or llm.base_url, answer_rate_per_minute=10_000,
                        answer_concurrency=8, answer_max_tokens=32)
    db = connect(settings.db_path)
    db["channels"].insert({"team_id": "T0FAKE", "id": "C0BENCH", "name": "bench", "watched": 1})
    app = build_app(settings)
    sent: dict[str, float] = {}
    with running(app) as url:
        sender = SlackSender(url=url, signing_secret="bench-secret")
        acks = []
        for i in range(args.mentions):
            ts = f"1700100{i:03d}.000100"
            t = time.monotonic()
            sent[ts] = t
            r = sender.event({"type": "app_mention", "channel": "C0BENCH", "user": f"U{i % 7}",
                              "text": f"<@UBOT> how do I reset my password? ({i})", "ts": ts})
            acks.append(time.monotonic() - t)
            assert r.status_code == 200, r.text
            time.sleep(args.gap)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [c for c in fake.calls_for("chat.update") if "answer_up" in json.dumps(c.params.get("blocks"))]
            if len(done) >= args.mentions:
                break
            time.sleep(0.05)
        placeholders = {c.params["thread_ts"]: c for c in fake.calls_for("chat.postMessage")}
        # map each placeholder (its ts in the fake) back to the mention it answers
        posted_ts = {}
        for (_ch, reply_ts), msg in fake.posted.items():
            posted_ts[reply_ts] = msg["thread_ts"]
        to_placeholder, to_answer = [], []
        finals = {}
        for c in fake.calls_for("chat.update"):
            if "answer_up" in json.dumps(c.params.get("blocks")):
                finals.setdefault(c.params["ts"], c.at)
        for mention_ts, call in placeholders.items():
            to_placeholder.append(call.at - sent[mention_ts])
        for reply_ts, at in finals.items():
            to_answer.append(at - sent[posted_ts[reply_ts]])
        answerer = app._threadtune_answerer
        answerer.pool.shutdown(wait=True)
    fake.stop()
    llm.stop()
    result = {
        "mentions": args.mentions, "answered": len(to_answer),
        "ack_p99_s": pct(acks, 0.99),
        "placeholder_p50_s": pct(to_placeholder, 0.5), "placeholder_p99_s": pct(to_placeholder, 0.99),
        "answer_p50_s": pct(to_answer, 0.5) if to_answer else None,
        "answer_p99_s": pct(to_answer, 0.99) if to_answer else None,
        "ratio_answer_to_placeholder_p50": round(statistics.median(to_answer) / statistics.median(to_placeholder), 2)
        if to_answer else None,
        "goal_placeholder_p99_s": 1.0,
    }
    print(f"ack p99 {result['ack_p99_s']} s · placeholder p50 {result['placeholder_p50_s']} s, p99 "
          f"{result['placeholder_p99_s']} s · answer p50 {result['answer_p50_s']} s, p99 {result['answer_p99_s']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
