"""Settings: env vars, Slack's standard names, lists, and one-line errors naming the variable."""

from __future__ import annotations

import pytest

from threadtune.settings import Settings, SettingsError, env_var, load_settings


def test_reads_threadtune_and_slack_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("THREADTUNE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("THREADTUNE_ADMIN_IDS", "U1, U2")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-abc")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "shh")
    s = load_settings(_env_file=None)
    assert s.data_dir == tmp_path
    assert s.admin_ids == ["U1", "U2"]
    assert s.slack_bot_token == "xoxb-abc"
    assert s.slack_signing_secret == "shh"
    assert s.base_model == "embedded"


def test_reads_dotenv(monkeypatch, tmp_path):
    env = tmp_path / ".env"
    env.write_text("THREADTUNE_REVIEW_CHANNEL=C123\nSLACK_APP_TOKEN=xapp-1\n")
    s = Settings(_env_file=env)
    assert s.review_channel == "C123"
    assert s.slack_app_token == "xapp-1"


def test_missing_value_names_the_variable():
    s = Settings(_env_file=None, slack_bot_token=None, review_channel=None)
    with pytest.raises(SettingsError) as err:
        s.require("slack_bot_token", "review_channel")
    message = str(err.value)
    assert "SLACK_BOT_TOKEN" in message and "THREADTUNE_REVIEW_CHANNEL" in message
    assert "\n" not in message


def test_invalid_value_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("THREADTUNE_SERVING_BACKEND", "tpu")
    with pytest.raises(SettingsError, match="THREADTUNE_SERVING_BACKEND"):
        load_settings(_env_file=None)


def test_every_field_is_documented():
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert env_var(name)
