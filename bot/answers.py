"""Answers in Slack: mentions in watched channels, `/ask QUESTION` and DMs; 👍/👎 feedback.

The flow: Slack gets its ack at once (bolt acks events before the listener runs; `/ask` acks first);
the listener posts a placeholder reply in the thread, then hands the question to a pool of
``answer_concurrency`` workers, which stream the model's answer into the placeholder with
``chat.update`` at most once per :data:`STREAM_INTERVAL_S`, within the workspace's one budget for
``chat.update`` (:mod:`curation.status_message`), and finish with the answer blocks (citations,
verified badge, footer, buttons): that last update always goes out. A timeout or a server error ends
as a friendly message with a Retry button, never as silence.

The listeners are in ``bot/ask.py``; feedback (👍/👎, corrections, "Save as FAQ") in
``bot/answer_feedback.py``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import answer_blocks as ab
from bot import escalation
from bot.answer_prompt import live_model, prepare
from bot.context import BotContext
from bot.ephemeral import tell
from bot.rate_limit import RateLimiter
from curation.answer_modes import ABSTAIN, CLOSEST, Checked, Thresholds, answer_text, check_generated, settle
from curation.status_message import StatusMessage
from curation.store import now, transaction
from serving.client import ModelClient
from serving.models import served_name
from serving.errors import ServerError, ServerTimeout, ServerUnavailable, ServingError

log = logging.getLogger(__name__)

#: Seconds between streaming ``chat.update`` calls (Slack allows about one update per second).
STREAM_INTERVAL_S = 1.0
#: Longer questions are cut: a 100 KB message must not become a 100 KB prompt.
MAX_QUESTION_CHARS = 4000
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


@dataclass(frozen=True)
class Question:
    """A question to answer, and where the answer goes."""

    team_id: str
    channel: str
    user_id: str
    text: str
    thread_ts: str  # the thread the answer goes into
    ts: str | None = None  # the asking message (excluded from the history)


def question_text(text: str) -> str:
    """The question without the bot mention(s), at most MAX_QUESTION_CHARS long."""
    return _MENTION.sub("", text or "").strip()[:MAX_QUESTION_CHARS]


class Answerer:
    """Posts placeholders, generates answers on a bounded pool, records them."""

    def __init__(self, ctx: BotContext) -> None:
        self.ctx = ctx
        s = ctx.settings
        self.limiter = RateLimiter(s.answer_rate_per_minute, 60.0)
        self.pool = ThreadPoolExecutor(max_workers=s.answer_concurrency, thread_name_prefix="answer")
        self._client: ModelClient | None = None
        self._lock = threading.Lock()

    # --- the model client ----------------------------------------------------------------
    def base_url(self) -> str:
        """The server answers come from: THREADTUNE_SERVING_URL, or `threadtune serve` on loopback."""
        s = self.ctx.settings
        return s.serving_url or f"http://127.0.0.1:{s.serving_port}/v1"

    def llm(self) -> ModelClient:
        with self._lock:
            if self._client is None:
                # One retry only: the user is waiting, and the Retry button covers the rest.
                self._client = ModelClient(self.base_url(), served_name(None),
                                           timeout=self.ctx.settings.answer_timeout_s, max_retries=1)
            return self._client

    # --- entry points ----------------------------------------------------------------------
    def ask(self, client: WebClient, q: Question, *, placeholder_ts: str | None = None) -> str | None:
        """Rate-limit, post the placeholder (or reuse one), queue the answer. Returns the reply ts."""
        wait = self.limiter.allow(f"{q.team_id}:{q.user_id}")
        if wait:
            self.ephemeral(client, q, f":snail: You have asked {self.limiter.limit} questions in the "
                            f"last minute; please ask again in {wait:.0f} s.")
            return None
        if not q.text:
            self.ephemeral(client, q, "Ask me a question, e.g. `@threadtune how do I reset my password?`")
            return None
        if placeholder_ts is None:
            resp = client.chat_postMessage(channel=q.channel, thread_ts=q.thread_ts,
                                           text=ab.THINKING, blocks=ab.placeholder_blocks())
            placeholder_ts = resp["ts"]
        else:
            self._message(client, q, placeholder_ts).update(ab.THINKING, ab.placeholder_blocks(), final=True)
        self.pool.submit(self._answer_safely, client, q, placeholder_ts)
        return placeholder_ts

    def _answer_safely(self, client: WebClient, q: Question, ts: str) -> None:
        try:
            self.answer(client, q, ts)
        except Exception:  # never silence: the placeholder must not stay "Thinking…"
            log.exception("answer failed")
            self._show_error(client, q, ts, "Something went wrong while answering; the error is in "
                             "the bot's log. Try again.")

    def answer(self, client: WebClient, q: Question, ts: str) -> int:
        """Generate and post the answer into the placeholder ``ts``; returns the answers row id."""
        s = self.ctx.settings
        db = self.ctx.db()
        started = time.monotonic()
        live = live_model(db, q.team_id)
        prep = prepare(db, q.team_id, q.text, default_system_prompt=s.system_prompt,
                       retrieval=s.retrieval, history=self.history(client, q),
                       thresholds=Thresholds(s.answer_verify_score, s.answer_abstain_score),
                       visible_in=q.channel,
                       permalink=lambda ch, mts: client.chat_getPermalink(channel=ch, message_ts=mts)["permalink"])
        model, version = served_name(live.name), live.version
        if not prep.decision.needs_model:  # verified (verbatim) or abstained: instant, no model call
            return self._finish(client, q, ts, prep, prep.mode, answer_text(prep.decision), version, started)
        try:
            try:
                text = self._stream(client, q, ts, prep, model, version, started)
            except ServerUnavailable:
                raise
            except ServerError as err:
                # Right after a promotion the embedded server restarts, and an attached server may
                # name models its own way: answer with what the server serves rather than fail.
                fallback = self._served_instead(model)
                if fallback is None:
                    raise
                log.info("model %s not served (%s); answering with %s", model, err, fallback)
                model, version = fallback, fallback.removeprefix("threadtune/")
                text = self._stream(client, q, ts, prep, model, version, started)
        except ServingError as err:
            log.warning("answer failed: %s", err)
            row = self._record(q, ts, "", version, prep, started, error=str(err))
            friendly = ("The model took too long to answer." if isinstance(err, ServerTimeout)
                        else "The model server is not answering right now.")
            self._show_error(client, q, ts, friendly + " Please try again in a moment.", answer_id=row)
            return 0
        checked = check_generated(text, q.text, prep.pairs)
        final = settle(prep.decision, checked)
        return self._finish(client, q, ts, prep, final.mode, answer_text(final, checked.text), version,
                            started, checked)

    def _finish(self, client: WebClient, q: Question, ts: str, prep: Any, mode: str, text: str,
                version: str, started: float, checked: Checked | None = None) -> int:
        """Record the answer and post it in its final form; an abstention asks the team. A generated
        answer whose sentences all stated facts that no retrieved pair supports is replaced by the
        closest approved pair, quoted and cited alone (the first retrieved: ``prep.sources[0]``)."""
        answer_id = self._record(q, ts, text, version, prep, started)
        if mode == ABSTAIN:
            asked = escalation.escalate(self.ctx, client, team_id=q.team_id, channel=q.channel,
                                        thread_ts=q.thread_ts, user_id=q.user_id, question=q.text,
                                        answer_id=answer_id)
            text += (" I have asked the team; you will hear back in this thread once they have answered."
                     if asked else " Please ask your team directly.")
        sources = [] if mode == ABSTAIN else prep.sources[:1] if mode == CLOSEST else prep.sources
        shown = checked if checked and mode != CLOSEST else None
        self._message(client, q, ts).update(
            ab.fallback_text(text), ab.answer_blocks(
                answer_id, text, model_version=version, sources=sources, mode=mode,
                flags=shown.flags if shown else None, held_back=shown.held_back if shown else None),
            final=True)
        return answer_id

    def _stream(self, client: WebClient, q: Question, ts: str, prep: Any, model: str, version: str,
                started: float) -> str:
        """Stream the answer into the placeholder: at most one ``chat.update`` per
        STREAM_INTERVAL_S, and none while the workspace's budget is kept for final updates."""
        s = self.ctx.settings
        text = ""
        message = self._message(client, q, ts)
        message.mark_sent()  # the placeholder was just posted
        for delta in self.llm().stream(prep.messages, max_tokens=s.answer_max_tokens, model=model):
            text += delta
            if time.monotonic() - started > s.answer_timeout_s:
                raise ServerTimeout(f"no complete answer within {s.answer_timeout_s:g} s")
            if message.due():
                # what streams in is checked as it comes: an unsupported figure is never shown
                shown = check_generated(text, q.text, prep.pairs).text
                message.update(ab.fallback_text(shown), ab.answer_blocks(
                    0, shown, model_version=version, sources=prep.sources, mode=prep.mode,
                    streaming=True))
        return text

    def _served_instead(self, wanted: str) -> str | None:
        """The model the server serves when it does not serve ``wanted`` (None: no such case)."""
        try:
            served = self.llm().models()
        except ServingError:
            return None
        return served[0] if served and wanted not in served else None

    # --- helpers --------------------------------------------------------------------------------
    def history(self, client: WebClient, q: Question) -> list[dict[str, str]]:
        """The thread so far (oldest first), as chat turns; empty outside a thread or on error."""
        if not q.thread_ts or q.thread_ts == q.ts:
            return []
        try:
            msgs = client.conversations_replies(channel=q.channel, ts=q.thread_ts, limit=50).get("messages", [])
        except SlackApiError:
            return []
        turns = []
        for m in msgs:
            if m.get("ts") == q.ts or not (m.get("text") or "").strip():
                continue
            if m.get("text") == "Thinking…":
                continue
            role = "assistant" if m.get("bot_id") else "user"
            turns.append({"role": role, "content": question_text(m["text"])})
        return turns

    def _record(self, q: Question, ts: str, text: str, version: str, prep: Any, started: float,
                error: str | None = None) -> int:
        db = self.ctx.db()
        sources = prep.sources if prep is not None else []
        with transaction(db):
            return int(db["answers"].insert({
                "team_id": q.team_id, "channel_id": q.channel, "thread_ts": q.thread_ts, "ts": ts,
                "user_id": q.user_id, "question": q.text, "answer": text, "model": version,
                "sources": json.dumps([{"candidate_id": x["candidate_id"], "permalink": x["permalink"]}
                                       for x in sources]),
                "verified": int(bool(prep is not None and prep.verified)),
                "latency_s": round(time.monotonic() - started, 3), "error": error, "created_at": now(),
            }).last_pk)

    def _message(self, client: WebClient, q: Question, ts: str) -> StatusMessage:
        """The answer's reply, edited in place within the workspace's chat.update budget."""
        return StatusMessage(client, q.channel, ts=ts, team_id=q.team_id, min_interval_s=STREAM_INTERVAL_S,
                             budget=self.ctx.updates())

    def _show_error(self, client: WebClient, q: Question, ts: str, message: str,
                    answer_id: int | None = None) -> None:
        """The error, with a Retry button. A question too long for the button's 2,000 characters
        travels as the id of its stored row instead (recorded here when there is none yet)."""
        retry: dict[str, Any] = {"c": q.channel, "t": q.thread_ts, "u": q.user_id, "q": q.text}
        if ab.retry_value(retry) is None:
            if answer_id is None:
                answer_id = self._record(q, ts, "", "", None, time.monotonic(), error=message)
            retry = {k: v for k, v in retry.items() if k != "q"} | {"a": answer_id}
        self._message(client, q, ts).update(message, ab.error_blocks(message, retry), final=True)

    def retry_question(self, value: str, team_id: str) -> Question | None:
        """The question a Retry button carries (whole, also when it travelled by reference), in
        ``team_id``: the workspace comes from the request's envelope, never from the button."""
        try:
            v = json.loads(value or "{}")
            if "a" in v:
                row = self.ctx.db().execute("select question from answers where id = ? and team_id = ?",
                                            [int(v["a"]), team_id]).fetchone()
                if row is None:
                    return None
                v["q"] = row[0]
            return Question(team_id, v["c"], v["u"], v["q"], v["t"])
        except (ValueError, KeyError, TypeError):
            return None

    def ephemeral(self, client: WebClient, q: Question, text: str) -> None:
        tell(client, q.channel, q.user_id, text, thread_ts=q.thread_ts)
