import pytest


@pytest.fixture
def socket_app(slack_settings, db):
    """The bolt app in Socket Mode (no signature), dispatching in-process."""
    from bot.app import build_app

    return build_app(slack_settings.model_copy(update={"slack_app_token": "xapp-test"}))
