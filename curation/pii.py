"""Scrub PII and secrets from text before a pair is stored, shown or put into a prompt.

The raw message stays only in the ``messages`` table; everything derived from it goes through
:func:`scrub`. Patterns are deliberately specific (token prefixes, separators in phone numbers) so
that version numbers, Slack timestamps and benchmark output survive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Order matters: private keys and URLs with credentials go before the shorter patterns inside them.
_PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "private_key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.S,
        ),
        "[PRIVATE KEY]",
    ),
    ("slack_webhook", re.compile(r"https://hooks\.slack\.com/(?:services|workflows)/[\w/+-]+"), "[TOKEN]"),
    ("slack_token", re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{10,}"), "[TOKEN]"),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"), "[TOKEN]"),
    ("aws_key_id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"), "[TOKEN]"),
    (
        "aws_secret",
        re.compile(r"(?i)\b(aws_secret_access_key|aws_session_token)(\s*[:=]\s*)[\"']?[A-Za-z0-9/+=]{20,}[\"']?"),
        r"\1\2[REDACTED]",
    ),
    ("gcp_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), "[TOKEN]"),
    ("gcp_oauth", re.compile(r"\bya29\.[0-9A-Za-z_-]{20,}"), "[TOKEN]"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), "[TOKEN]"),
    ("url_credentials", re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"), "[REDACTED]"),
    (
        "password",
        re.compile(
            r"(?i)\b(pass(?:word|wd|phrase)?|pwd|secret|api[_-]?key|token)"
            r"(\s*[:=]\s*)(?![\[<])[\"']?[^\s\"',;]{4,}[\"']?"
        ),
        r"\1\2[REDACTED]",
    ),
    # "my password is hunter22": only a value with a digit or symbol, so "the password is wrong" stays.
    (
        "password",
        re.compile(
            r"(?i)\b(pass(?:word|wd|phrase)?|pwd)(\s+is\s+)[\"']?"
            r"(?=[^\s\"']*[\d!@#$%^&*_+=])[^\s\"',;]{4,}[\"']?"
        ),
        r"\1\2[REDACTED]",
    ),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), "[EMAIL]"),
    (
        "phone",
        re.compile(
            r"(?<![\w.+/-])(?:\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}"
            r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]\d{3,4}"
            r"|\d{3}[ .-]\d{3}[ .-]\d{4})(?![\w.-]*\d)"
        ),
        "[PHONE]",
    ),
]


@dataclass(frozen=True)
class Scrubbed:
    """Scrubbed text and how many things were removed, by kind."""

    text: str
    count: int
    kinds: dict[str, int]


def scrub(text: str | None) -> Scrubbed:
    """Replace emails, phone numbers, Slack/AWS/GCP/GitHub tokens, private keys and passwords."""
    if not text:
        return Scrubbed(text or "", 0, {})
    kinds: dict[str, int] = {}
    for kind, pattern, replacement in _PATTERNS:
        text, n = pattern.subn(replacement, text)
        if n:
            kinds[kind] = kinds.get(kind, 0) + n
    return Scrubbed(text, sum(kinds.values()), kinds)


def scrub_text(text: str | None) -> tuple[str, int]:
    """``(scrubbed text, number of scrubs)``."""
    result = scrub(text)
    return result.text, result.count
