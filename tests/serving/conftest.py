"""Fixtures for serving tests: the scripted LLM server and the bot wired to it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes.llm import FakeLLM

WATCHED = "C0SUPPORT"


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    """A scripted OpenAI-compatible server (and vLLM runtime-LoRA stand-in) on loopback."""
    fake = FakeLLM("The answer is in the team handbook.", served=["threadtune/base"]).start()
    yield fake
    fake.stop()


@pytest.fixture
def answer_settings(slack_settings, fake_llm):
    """Settings with Slack at the fake and the model server at the scripted LLM. The model answers
    every question that no approved pair answers verbatim (abstain score 0): these tests are about
    the generation flow; tests/serving/test_answer_modes.py covers abstention."""
    return slack_settings.model_copy(update={"serving_url": fake_llm.base_url, "answer_timeout_s": 5.0,
                                             "answer_abstain_score": 0.0})


def watch(db, channel: str = WATCHED, team_id: str = "T0FAKE") -> None:
    """Mark ``channel`` watched in the store, as `/threadtune watch` does."""
    db["channels"].upsert({"team_id": team_id, "id": channel, "name": "support", "watched": 1},
                          pk=("team_id", "id"))


def approve_pair(db, question: str, answer: str, *, team_id: str = "T0FAKE",
                 permalink: str | None = "https://fake.slack.com/archives/C0SUPPORT/p1700000000000100") -> int:
    """An approved pair with one Slack source (in a public channel), written straight into the store."""
    db.execute("insert or ignore into channels (team_id, id, name, is_private) values (?, ?, 'support', 0)",
               [team_id, WATCHED])
    cid = db["candidates"].insert({"team_id": team_id, "question": question, "answer": answer,
                                   "status": "approved", "origin": "manual",
                                   "dedup_key": f"k-{question}", "created_at": "2026-01-01"}).last_pk
    db["candidate_sources"].insert({"team_id": team_id, "candidate_id": cid, "kind": "message",
                                    "channel_id": WATCHED, "ts": "1700000000.000100",
                                    "permalink": permalink})
    return int(cid)


@pytest.fixture
def answer_bot_factory(db, fake_slack):
    """Start the real bolt app (HTTP, signed requests) with given settings; yields a starter."""
    from bot.app import build_app
    from bot.server import running
    from tests.conftest import SIGNING_SECRET
    from tests.fakes.signed import SlackSender

    stack = []

    def start(settings):
        app = build_app(settings)
        cm = running(app)
        url = cm.__enter__()
        stack.append((cm, app))
        return SlackSender(url=url, signing_secret=SIGNING_SECRET, fake=fake_slack)

    yield start
    for cm, app in stack:
        cm.__exit__(None, None, None)
        answerer = getattr(app, "_threadtune_answerer", None)
        if answerer is not None:
            answerer.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def answer_bot(answer_bot_factory, answer_settings, db):
    """The bot answering from the scripted LLM in the watched channel ``C0SUPPORT``."""
    watch(db)
    return answer_bot_factory(answer_settings)


def require_vllm() -> None:
    """Skip where ``.venv-vllm`` is absent, but fail in CI, where `make test` builds it."""
    from serving.vllm import vllm_available

    if not vllm_available():
        if os.environ.get("CI"):
            pytest.fail(".venv-vllm is missing in CI: `make test` builds it (make install-vllm)")
        pytest.skip(".venv-vllm is absent (make install-vllm)")
