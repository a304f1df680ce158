"""The one client for any OpenAI-compatible server (``transformers serve``, vLLM, a hosted API).

A thin layer over the ``openai`` package: a timeout per request, bounded retries (the package's own,
which back off on connection errors, 408, 429 and 5xx), streaming, and errors translated into
``ServerError`` subclasses that name the server and the fix. The model name picks the adapter: vLLM
serves the base model and every loaded LoRA adapter under their own names.

Used by the bot (answers), curation (extraction) and evaluation. ``openai`` is imported when a
client is made, not with this module: it takes about a second, and the bot must start fast.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from serving.errors import ServerError, ServerRejected, ServerTimeout, ServerUnavailable

#: The API key sent to servers that need none (transformers serve, a local vLLM).
NO_KEY = "threadtune"


@dataclass(frozen=True)
class Completion:
    """One finished chat completion."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    latency_s: float


def clean_model_id(model: str) -> str:
    """The served name without the ``@revision`` that ``transformers serve`` appends."""
    return model.split("@", 1)[0]


class ModelClient:
    """Chat with ``model`` on the server at ``base_url`` (ending in ``/v1``)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 timeout: float = 60.0, max_retries: int = 2) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ServerError(f"{base_url!r}: not an http(s) URL; give the server's base URL, "
                              "e.g. http://127.0.0.1:8011/v1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        import openai

        self._openai = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or NO_KEY, timeout=timeout,
            max_retries=max_retries,
        )

    # --- requests -----------------------------------------------------------------------
    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 256,
             temperature: float = 0.0, model: str | None = None,
             timeout: float | None = None, response_format: dict[str, Any] | None = None,
             extra_body: dict[str, Any] | None = None) -> Completion:
        """One non-streaming chat completion.

        ``response_format`` asks for structured output (``{"type": "json_schema", ...}``: vLLM
        constrains decoding to the schema); a server that refuses it answers HTTP 400, raised as
        :class:`ServerError`. ``extra_body`` passes engine options such as vLLM's
        ``repetition_penalty``.
        """
        started = time.monotonic()
        extra: dict[str, Any] = {}
        if timeout:
            extra["timeout"] = timeout
        if response_format is not None:
            extra["response_format"] = response_format
        if extra_body:
            extra["extra_body"] = extra_body
        with self._errors():
            resp = self._openai.chat.completions.create(
                model=model or self.model, messages=messages, max_tokens=max_tokens,  # type: ignore[arg-type]
                temperature=temperature, **extra,
            )
        choice = resp.choices[0] if resp.choices else None
        usage = resp.usage
        return Completion(
            text=(choice.message.content if choice and choice.message else "") or "",
            model=clean_model_id(resp.model or model or self.model),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason if choice else None,
            latency_s=time.monotonic() - started,
        )

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int = 256,
               temperature: float = 0.0, model: str | None = None,
               response_format: dict[str, Any] | None = None) -> Iterator[str]:
        """Stream a chat completion: yields text deltas as the server sends them.

        The timeout applies to each read, so a server that stalls mid-answer raises ServerTimeout.
        Closing the generator early closes the connection, and vLLM aborts the request.
        """
        extra = {"response_format": response_format} if response_format is not None else {}
        with self._errors():
            chunks = self._openai.chat.completions.create(
                model=model or self.model, messages=messages, max_tokens=max_tokens,  # type: ignore[arg-type]
                temperature=temperature, stream=True, **extra,
            )
            with chunks:
                for chunk in chunks:
                    for choice in chunk.choices or []:
                        delta = choice.delta.content if choice.delta else None
                        if delta:
                            yield delta

    def models(self) -> list[str]:
        """Names the server serves (``GET /v1/models``)."""
        with self._errors():
            return [clean_model_id(m.id) for m in self._openai.models.list()]

    def health(self, timeout: float = 2.0) -> bool:
        """Whether ``GET /health`` (beside ``/v1``) answers 200."""
        return health(self.base_url, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._openai.close()

    # --- errors ---------------------------------------------------------------------------
    def _errors(self) -> _Translate:
        return _Translate(self.base_url, self.timeout)


class _Translate:
    """Turn openai exceptions into ServerError subclasses naming the server and the fix."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url, self.timeout = base_url, timeout

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: Any) -> bool:
        if err is None or isinstance(err, ServerError):
            return False
        import openai

        if isinstance(err, (openai.APITimeoutError, httpx.TimeoutException)):
            raise ServerTimeout(
                f"{self.base_url}: no answer within {self.timeout:g} s; the server is overloaded or "
                "stuck (raise THREADTUNE_ANSWER_TIMEOUT_S or check the server's log)"
            ) from err
        if isinstance(err, (openai.APIConnectionError, httpx.TransportError)):
            raise ServerUnavailable(
                f"{self.base_url}: cannot connect ({err}); start it with `threadtune serve` or fix "
                "THREADTUNE_SERVING_URL"
            ) from err
        if isinstance(err, openai.APIStatusError):
            kind = ServerRejected if 400 <= err.status_code < 500 else ServerError
            raise kind(
                f"{self.base_url}: HTTP {err.status_code}: {_detail(err)}"
            ) from err
        return False


def _detail(err: Any) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("detail") or inner)
        return str(body.get("detail") or inner)
    return str(body or err.message)


def health_url(base_url: str) -> str:
    """``/health`` lives beside ``/v1`` on transformers serve and vLLM."""
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root + "/health"


def health(base_url: str, timeout: float = 2.0) -> bool:
    """Whether the server at ``base_url`` answers ``GET /health`` with 200."""
    try:
        return httpx.get(health_url(base_url), timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
