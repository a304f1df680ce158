"""``build_app``: the slack-bolt App with every listener of threadtune."""

from __future__ import annotations

import logging
import re

from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot import (
    ask,
    capture,
    channels,
    context,
    escalation,
    faq,
    jobs,
    privacy,
    review,
    review_listeners,
    slash,
    status_command,
    validation,
)
from bot.context import BotContext
from threadtune.settings import Settings

log = logging.getLogger(__name__)

#: Bot modules in registration order; each has ``register(app, ctx)`` and ``SUBCOMMANDS``.
MODULES = (capture, channels, faq, review, review_listeners, jobs, escalation, ask, status_command, privacy)


class ThreadtuneApp(App):
    """bolt's App, screening Socket Mode payloads before bolt dispatches them (HTTP requests are
    screened in ``bot/server.py``, after their signature is checked): see ``validation.screen``."""

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        """Dispatch ``req`` unless it is malformed or of a type nothing handles (200, dropped)."""
        if req.mode == "socket_mode":
            early = validation.screen(req.body)
            if early is not None:
                return early
        return super().dispatch(req)


def web_client(settings: Settings) -> WebClient:
    """A WebClient that honours 429 Retry-After and retries connection errors (slack_sdk handlers)."""
    settings.require("slack_bot_token")
    client = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url, timeout=30)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=5))
    client.retry_handlers.append(ConnectionErrorRetryHandler(max_retry_count=2))
    return client


def subcommands() -> dict[str, slash.Handler]:
    """Every ``/threadtune`` subcommand of every bot module."""
    handlers: dict[str, slash.Handler] = {}
    for module in MODULES:
        for name, handler in module.SUBCOMMANDS.items():
            if name in handlers:
                raise RuntimeError(f"/threadtune {name} is declared twice ({module.__name__})")
            handlers[name] = handler
    return handlers


def build_app(settings: Settings, *, client: WebClient | None = None,
              socket_mode: bool | None = None) -> App:
    """The slack-bolt App. HTTP mode verifies every request with the signing secret; Socket Mode
    (``SLACK_APP_TOKEN`` set) needs none."""
    socket = bool(settings.slack_app_token) if socket_mode is None else socket_mode
    if not socket:
        settings.require("slack_bot_token", "slack_signing_secret")
    client = client or web_client(settings)
    app = ThreadtuneApp(
        client=client,
        signing_secret=settings.slack_signing_secret or "unused-in-socket-mode",
        request_verification_enabled=not socket,
        # Nothing of ours needs auth.test at start-up: the bot starts in well under two seconds.
        token_verification_enabled=False,
        ignoring_self_events_enabled=True,
        raise_error_for_unhandled_request=False,
    )
    ctx = BotContext(settings)
    context.register(app)  # the workspace comes from the envelope only
    slash.register(app, ctx, subcommands())
    for module in MODULES:
        module.register(app, ctx)
    # Last: bolt runs the first listener that matches and answers 404 when none does, which
    # Slack retries for days. Every other event is acknowledged and dropped.
    app.event(re.compile(".*"))(capture.ignore_event)

    @app.error
    def on_error(error, body):  # noqa: ANN001
        log.error("unhandled error in listener: %s", error, exc_info=error)

    return app
