"""Shared fixtures: fresh stores, settings, the fake Slack, the bot over real HTTP, real data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
SIGNING_SECRET = "test-signing-secret"
ADMIN = "U0ADMIN"
REVIEWER = "U0REVIEWER"
MEMBER = "U0MEMBER"
#: Channels of the fake workspace that tests use without seeding them.
WORKSPACE_CHANNELS = {"C0GENERAL": "general", "C0REVIEW": "review", "C0OPS": "ops", "C0HELP": "help",
                      "C0SUPPORT": "support"}


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real public Slack and FAQ data); skips only where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def settings(tmp_path: Path):
    """Settings with a fresh data dir and test roles; no environment is read for these fields."""
    from threadtune.settings import Settings

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        team_id="T0FAKE",
        slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=None,
        admin_ids=[ADMIN],
        reviewer_ids=[REVIEWER],
        review_channel="C0REVIEW",
    )


@pytest.fixture
def db(settings):
    """A fresh store (real SQLite file, all migrations applied)."""
    from curation.store import connect

    database = connect(settings.db_path)
    yield database
    database.close()


@pytest.fixture
def fake_slack():
    """The fake Slack Web API on a free loopback port, with the test workspace's channels (the bot is
    a member of each)."""
    from tests.fakes.slack import FakeSlack

    fake = FakeSlack().start()
    for channel_id, name in WORKSPACE_CHANNELS.items():
        fake.add_channel(channel_id, name)
    yield fake
    fake.stop()


@pytest.fixture
def slack_settings(settings, fake_slack):
    """Settings whose Slack API URL points at the fake."""
    return settings.model_copy(update={"slack_api_url": fake_slack.api_url})


@pytest.fixture
def bot(slack_settings, db, fake_slack) -> Iterator:
    """The real bolt App (build_app) served by uvicorn on loopback; yields a signed SlackSender."""
    from bot.app import build_app
    from bot.server import running
    from tests.fakes.signed import SlackSender

    app = build_app(slack_settings)
    with running(app, signing_secret=slack_settings.slack_signing_secret) as url:
        yield SlackSender(url=url, signing_secret=SIGNING_SECRET, fake=fake_slack)


@pytest.fixture(scope="session")
def embedded_model_dir(tmp_path_factory) -> Path:
    """The embedded SmolLM2 converted once per test session into a plain HF folder."""
    from serving.models import resolve

    cache = Path(os.environ.get("THREADTUNE_TEST_MODELS", tmp_path_factory.mktemp("models")))
    return resolve("embedded", cache).path
