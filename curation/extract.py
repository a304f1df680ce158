"""Extraction by prompt: build the prompt, ask an OpenAI-compatible endpoint for JSON, parse it.

- Prompt templates are files in ``curation/prompts/`` (``[system]`` and ``[user]`` sections,
  ``$placeholders``). Their version id, ``<name>:<sha8>``, is stored on every candidate.
- Source text is data: it goes into the user message between tags named by a hash of the text
  (so the text cannot close its own tag), and any look-alike tags inside it are defused.
- The model is called through :class:`serving.client.ModelClient`, the one LLM path (its retries
  cover connection errors and 5xx). The JSON schema sent as ``response_format`` is the pydantic
  models' own (:func:`pairs_schema`); vLLM constrains decoding to it. Where the endpoint refuses
  ``response_format``, the client stops sending it.
- Work is bounded: a token budget per reply, the schema caps pairs and string lengths, and a reply
  that starts looping is cut off as it streams (:func:`looping`); the complete pairs before the
  loop are kept. An unparsable reply is counted, not asked again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import string
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curation.errors import CurationError

log = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).with_name("prompts")
EXTRACT_PROMPT = "extract_v1"
REWRITE_PROMPT = "rewrite_v1"
#: Replies longer than this are not parsed (a runaway generation, or a hostile endpoint).
MAX_REPLY_CHARS = 200_000
MAX_PAIRS_PER_CHUNK = 20
#: Most pairs the schema lets the model write for one chunk (a chunk of a support thread answers
#: one to three questions; more is the model looping).
SCHEMA_MAX_PAIRS = 6
#: Token budget of a rewrite (one question and its answer).
REWRITE_MAX_TOKENS = 256


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


#: Longest strings the schema allows (characters); the answers in real support threads fit.
MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 1200
MAX_EVIDENCE_CHARS = 300


class QAPair(BaseModel):
    """One extracted pair."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})

    question: str = Field(min_length=1, json_schema_extra={"maxLength": MAX_QUESTION_CHARS})
    answer: str = Field(min_length=1, json_schema_extra={"maxLength": MAX_ANSWER_CHARS})
    evidence: str = Field(default="", json_schema_extra={"maxLength": MAX_EVIDENCE_CHARS})

    @field_validator("question", "answer", "evidence", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, (int, float)):
            return str(value)
        return value.strip() if isinstance(value, str) else value


class PairList(BaseModel):
    """What extraction asks for: the pairs one chunk answers."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": False})

    pairs: list[QAPair] = Field(json_schema_extra={"maxItems": SCHEMA_MAX_PAIRS})


class Rewrite(BaseModel):
    """What a rewrite asks for: one standalone pair."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": False})

    question: str = Field(min_length=1, json_schema_extra={"maxLength": MAX_QUESTION_CHARS})
    answer: str = Field(min_length=1, json_schema_extra={"maxLength": MAX_ANSWER_CHARS})


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with every property required (what strict structured output wants)."""
    schema = model.model_json_schema()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["required"] = list(node["properties"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


def pairs_schema() -> dict[str, Any]:
    """The JSON schema of a pair list, from :class:`PairList`."""
    return strict_schema(PairList)


def pair_schema() -> dict[str, Any]:
    """The JSON schema of one rewritten pair, from :class:`Rewrite`."""
    return strict_schema(Rewrite)


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
            if len(found) > MAX_PAIRS_PER_CHUNK:
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
    """Pairs from a model reply; invalid items are dropped, a reply with no pair list raises.

    A reply cut off mid-list (the token budget, a loop) keeps the pairs that were complete.
    """
    values = json_values(reply)
    for value in values:
        items = _pair_dicts(value)
        if items is None:
            continue
        if isinstance(value, dict) and "pairs" not in value:  # lone pairs found in broken JSON
            items = [v for v in values if isinstance(v, dict) and "question" in v and "answer" in v]
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


def looping(text: str, *, min_block: int = 6, max_block: int = 240, repeats: int = 4) -> bool:
    """Whether ``text`` ends in the same block of characters ``repeats`` times in a row: a small
    model that has started to loop, and would go on until the token limit."""
    n = len(text)
    for size in range(min_block, min(max_block, n // repeats) + 1):
        block = text[n - size:]
        if not block.strip():
            continue
        if all(text[n - (k + 1) * size: n - k * size] == block for k in range(1, repeats)):
            return True
    return False


@dataclass
class LLM:
    """The curation model, asked through :class:`serving.client.ModelClient` (the one LLM path).

    ``use_schema`` is ``None`` until the endpoint has answered a request with ``response_format``;
    after a refusal (HTTP 4xx) it is ``False`` and the schema is no longer sent. The counters say
    how many replies came back, how many parsed, and how many were cut off looping.
    """

    client: Any  # serving.client.ModelClient
    max_tokens: int = 384
    temperature: float = 0.0
    use_schema: bool | None = None
    #: The server batches requests in flight (vLLM, a hosted API): run several at once.
    batching: bool = False
    calls: int = field(default=0, compare=False)
    replies: int = field(default=0, compare=False)
    parsed: int = field(default=0, compare=False)
    cut: int = field(default=0, compare=False)
    _lock: Any = field(default_factory=threading.Lock, compare=False, repr=False)

    def _count(self, **by: int) -> None:
        with self._lock:
            for name, n in by.items():
                setattr(self, name, getattr(self, name) + n)

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any] | None = None,
                 schema_name: str = "qa", max_tokens: int | None = None) -> str:
        """One streamed completion's text, cut off where it starts looping."""
        from serving.errors import ServerError, ServerRejected

        fmt = None
        if schema is not None and self.use_schema is not False:
            fmt = {"type": "json_schema", "json_schema": {"name": schema_name, "schema": schema, "strict": True}}
        try:
            try:
                text = self._stream(messages, fmt, max_tokens or self.max_tokens)
            except ServerRejected as err:
                if fmt is None:
                    raise LLMError(f"the curation endpoint refused the request: {err}") from None
                log.info("endpoint refused response_format; parsing plain output from now on (%s)", err)
                self.use_schema = False
                text = self._stream(messages, None, max_tokens or self.max_tokens)
            else:
                if fmt is not None:
                    self.use_schema = True
        except ServerError as err:
            raise LLMError(f"the curation endpoint failed ({err}); check that it is running, or unset "
                           "THREADTUNE_LLM_BASE_URL to use the embedded model") from None
        self._count(replies=1)
        return text

    def _stream(self, messages: list[dict[str, str]], fmt: dict[str, Any] | None, max_tokens: int) -> str:
        self._count(calls=1)
        parts: list[str] = []
        size = 0
        stream = self.client.stream(messages, max_tokens=max_tokens, temperature=self.temperature,
                                    response_format=fmt)
        try:
            for delta in stream:
                parts.append(delta)
                size += len(delta)
                if len(parts) % 16 == 0 and looping("".join(parts)[-1200:]):
                    self._count(cut=1)
                    break  # closing the stream aborts the request on the server
                if size > MAX_REPLY_CHARS:
                    break
        finally:
            stream.close()
        return "".join(parts)

    def ask_json(self, messages: list[dict[str, str]], parse, schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None):
        """``parse(reply)`` of one completion; raises :class:`LLMOutputError` (counted) when the
        reply holds no usable JSON, or :class:`LLMError` when the endpoint fails."""
        reply = self.complete(messages, schema, max_tokens=max_tokens)
        result = parse(reply)
        self._count(parsed=1)
        return result


def extract_pairs(llm: LLM, text: str, kind: str) -> list[QAPair]:
    """Pairs that one chunk of ``kind`` answers (an empty list when it answers none)."""
    return llm.ask_json(extract_messages(text, kind), parse_pairs, pairs_schema())


def rewrite_pair(llm: LLM, transcript: str, question: str, answer: str) -> QAPair:
    """The deterministic pair rewritten by the model into a standalone FAQ entry."""
    return llm.ask_json(rewrite_messages(transcript, question, answer), parse_pair, pair_schema(),
                        max_tokens=min(llm.max_tokens, REWRITE_MAX_TOKENS))
