"""Extraction by prompt: build the prompt, ask an OpenAI-compatible endpoint for JSON, parse it.

- Prompt templates are files in ``curation/prompts/`` (``[system]`` and ``[user]`` sections,
  ``$placeholders``). Their version id, ``<name>:<sha8>``, is stored on every candidate.
- Source text is data: it goes into the user message between tags named by a hash of the text
  (so the text cannot close its own tag), and any look-alike tags inside it are defused.
- Where the endpoint accepts ``response_format`` with a JSON schema (vLLM does), it is used; where
  it refuses it, the client stops sending it. The reply is parsed robustly either way (code fences,
  prose around the JSON) and validated with pydantic. Retries are bounded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import string
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from curation.errors import CurationError

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).with_name("prompts")
EXTRACT_PROMPT = "extract_v1"
REWRITE_PROMPT = "rewrite_v1"
#: Replies longer than this are not parsed (a runaway generation, or a hostile endpoint).
MAX_REPLY_CHARS = 200_000
MAX_PAIRS_PER_CHUNK = 20


class LLMError(CurationError):
    """The curation endpoint could not be reached or kept failing."""


class LLMOutputError(CurationError):
    """The model's reply held no valid JSON of the expected shape."""


# --- prompt templates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """A template file: system text, user template and a version id."""

    name: str
    system: str
    user: str
    version: str

    def messages(self, **values: str) -> list[dict[str, str]]:
        """Chat messages with ``values`` substituted into the user template."""
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": string.Template(self.user).safe_substitute(values)},
        ]


@cache
def load_prompt(name: str) -> Prompt:
    """Read ``curation/prompts/<name>.txt``; its version id is ``<name>:<first 8 of sha256>``."""
    path = PROMPTS_DIR / f"{name}.txt"
    if not path.is_file():
        raise CurationError(f"prompt template {path} is missing; reinstall threadtune")
    raw = path.read_text(encoding="utf-8")
    match = re.fullmatch(r"\s*\[system\]\n(.*?)\n\[user\]\n(.*)", raw, re.S)
    if not match:
        raise CurationError(f"{path}: a prompt needs a [system] and a [user] section")
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return Prompt(name, match.group(1).strip(), match.group(2).strip(), f"{name}:{digest}")


_TAG_LIKE = re.compile(r"</?\s*(?:draft-)?(?:source|src)-[0-9a-f]*\s*>", re.I)


def data_tag(text: str) -> str:
    """A tag name derived from the text itself, so the text cannot contain its own closing tag."""
    return "source-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def defuse(text: str) -> str:
    """Source text made safe to put between tags: look-alike tags are neutralised."""
    return _TAG_LIKE.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


def extract_messages(text: str, kind: str, prompt: Prompt | None = None) -> list[dict[str, str]]:
    """The chat messages that ask for pairs from one chunk of ``kind`` (thread, document …)."""
    prompt = prompt or load_prompt(EXTRACT_PROMPT)
    safe = defuse(text)
    return prompt.messages(source=safe, kind=kind, tag=data_tag(safe))


def rewrite_messages(transcript: str, question: str, answer: str,
                     prompt: Prompt | None = None) -> list[dict[str, str]]:
    """The chat messages that ask to rewrite a deterministic pair as a standalone FAQ entry."""
    prompt = prompt or load_prompt(REWRITE_PROMPT)
    safe = defuse(transcript)
    return prompt.messages(source=safe, question=defuse(question), answer=defuse(answer),
                           tag=data_tag(safe + question + answer))


# --- output parsing ----------------------------------------------------------------------------


class QAPair(BaseModel):
    """One extracted pair."""

    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    evidence: str = ""

    @field_validator("question", "answer", "evidence", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, (int, float)):
            return str(value)
        return value.strip() if isinstance(value, str) else value


PAIRS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pairs": {
            "type": "array",
            "maxItems": MAX_PAIRS_PER_CHUNK,
            "items": {
                "type": "object",
                "properties": {
                    "question": {"type": "string"},
                    "answer": {"type": "string"},
                    "evidence": {"type": "string"},
                },
                "required": ["question", "answer", "evidence"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["pairs"],
    "additionalProperties": False,
}

PAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
    "additionalProperties": False,
}

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)


def json_values(reply: str) -> list[Any]:
    """Every JSON value found in ``reply``: the whole text, fenced blocks, then the first value
    starting at each ``{`` or ``[`` (so prose before or after the JSON is ignored)."""
    if not reply or not reply.strip():
        raise LLMOutputError("the model returned an empty reply")
    if len(reply) > MAX_REPLY_CHARS:
        raise LLMOutputError(f"the model's reply is {len(reply):,} characters (limit {MAX_REPLY_CHARS:,})")
    found: list[Any] = []
    for candidate in [reply, *_FENCE.findall(reply)]:
        try:
            found.append(json.loads(candidate))
        except (json.JSONDecodeError, RecursionError):
            pass
    if found:
        return found
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", reply):
        try:
            value, _ = decoder.raw_decode(reply, match.start())
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, (dict, list)) and value:
            found.append(value)
            if len(found) >= 5:
                break
    if not found:
        raise LLMOutputError(f"the model's reply holds no JSON: {reply[:120]!r}")
    return found


def _pair_dicts(value: Any) -> list[Any] | None:
    if isinstance(value, dict):
        if isinstance(value.get("pairs"), list):
            return value["pairs"]
        if "question" in value and "answer" in value:
            return [value]
        return None
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    return None


def parse_pairs(reply: str) -> list[QAPair]:
    """Pairs from a model reply; invalid items are dropped, a reply with no pair list raises."""
    for value in json_values(reply):
        items = _pair_dicts(value)
        if items is None:
            continue
        pairs = []
        for item in items[:MAX_PAIRS_PER_CHUNK]:
            try:
                pairs.append(QAPair.model_validate(item))
            except ValidationError:
                continue
        if pairs or not items:
            return pairs
    raise LLMOutputError(f"the model's reply has no list of question/answer pairs: {reply[:120]!r}")


def parse_pair(reply: str) -> QAPair:
    """One ``{question, answer}`` object from a model reply."""
    pairs = parse_pairs(reply)
    if not pairs:
        raise LLMOutputError("the model returned no pair")
    return pairs[0]


# --- calling the endpoint ----------------------------------------------------------------------


@dataclass
class LLM:
    """An OpenAI-compatible chat endpoint used for curation.

    ``use_schema`` is ``None`` until the endpoint has answered a request with ``response_format``;
    after a refusal it is ``False`` and the schema is no longer sent.
    """

    client: Any  # openai.OpenAI or anything with .chat.completions.create
    model: str
    max_attempts: int = 3
    max_tokens: int = 700
    temperature: float = 0.0
    use_schema: bool | None = None
    calls: int = field(default=0, compare=False)

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None,
                 schema_name: str = "qa") -> str:
        """One chat completion's text. Falls back once from ``response_format`` to plain output."""
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": messages,
                                  "max_tokens": self.max_tokens, "temperature": self.temperature}
        if schema is not None and self.use_schema is not False:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            }
        try:
            self.calls += 1
            response = self.client.chat.completions.create(**kwargs)
        except openai.BadRequestError as err:
            if "response_format" not in kwargs:
                raise LLMError(f"the curation endpoint refused the request: {err}") from None
            log.info("endpoint refused response_format; parsing plain output from now on (%s)", err)
            self.use_schema = False
            kwargs.pop("response_format")
            self.calls += 1
            response = self.client.chat.completions.create(**kwargs)
        else:
            if "response_format" in kwargs:
                self.use_schema = True
        choices = getattr(response, "choices", None) or []
        if not choices:
            return ""
        return choices[0].message.content or ""

    def ask_json(self, messages: list[dict[str, str]], parse, schema: dict[str, Any] | None = None):
        """``parse(reply)`` of a completion, retrying bounded times on unparsable output and on
        connection errors. Raises :class:`LLMOutputError` or :class:`LLMError` at the end."""
        import openai

        last: Exception | None = None
        attempt_messages = list(messages)
        for attempt in range(1, self.max_attempts + 1):
            try:
                reply = self.complete(attempt_messages, schema)
            except (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError) as err:
                last = LLMError(f"the curation endpoint failed ({type(err).__name__}: {err}); check "
                                "that it is running, or unset THREADTUNE_LLM_BASE_URL to use the "
                                "embedded model")
                continue
            try:
                return parse(reply)
            except LLMOutputError as err:
                last = err
                log.debug("attempt %d/%d: %s", attempt, self.max_attempts, err)
                # Show the model its own reply and ask again; the source stays data, where it was.
                attempt_messages = [*messages, {"role": "assistant", "content": reply[:2000]},
                                    {"role": "user", "content": "That reply was not the JSON object "
                                     "asked for. Reply again with the JSON object only, in the shape "
                                     "the instructions give."}]
        assert last is not None
        raise last


def extract_pairs(llm: LLM, text: str, kind: str) -> list[QAPair]:
    """Pairs that one chunk of ``kind`` answers (an empty list when it answers none)."""
    return llm.ask_json(extract_messages(text, kind), parse_pairs, PAIRS_SCHEMA)


def rewrite_pair(llm: LLM, transcript: str, question: str, answer: str) -> QAPair:
    """The deterministic pair rewritten by the model into a standalone FAQ entry."""
    return llm.ask_json(rewrite_messages(transcript, question, answer), parse_pair, PAIR_SCHEMA)
