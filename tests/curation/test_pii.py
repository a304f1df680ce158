"""PII and secrets are scrubbed from pairs; ordinary technical text survives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.pii import scrub


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mail jane.doe@example.com for access", "email"),
        ("call me on +1 415 555 0100", "phone"),
        ("office (415) 555-0100", "phone"),
        ("use token xoxb-1234567890-1234567890-abcdefghijkl", "slack_token"),
        ("app token xapp-1-A0123-456-abcdef", "slack_token"),
        ("webhook https://hooks.slack.com/services/T000/B000/XXXXXXXX", "slack_webhook"),
        ("key AKIAIOSFODNN7EXAMPLE in the config", "aws_key_id"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret"),
        ("gcp AIzaSyA-1234567890abcdefghijklmnopqrstu", "gcp_api_key"),
        ("ghp_" + "a1" * 18 + " is my token", "github_token"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----", "private_key"),
        ("my password is hunter22", "password"),
        ("login with password: s3cr3t!", "password"),
        ("connect to postgres://admin:pa55w0rd@db.internal/app", "url_credentials"),
    ],
)
def test_secret_or_pii_is_scrubbed_and_counted(text, kind):
    result = scrub(text)
    assert result.count >= 1
    assert kind in result.kinds
    for secret in ("jane.doe@", "555", "xoxb-1234567890", "AKIAIOSFODNN7", "hunter22", "s3cr3t",
                   "b3BlbnNzaC1rZXk", "pa55w0rd", "wJalrXUtnFEMI", "ghp_a1", "AIzaSyA"):
        assert secret not in result.text


@pytest.mark.parametrize(
    "text",
    [
        "julia> @btime sum($a)  115.129 μs (1493 allocations: 31.31 KiB)",
        "Slack ts 1607904608.428900 and version 1.5.3, on 2020-12-14 10:30",
        "pkg> add Foo@1.2.3",
        "The password is wrong, use the password reset page",
        "Set the timeout to 30 seconds and retry 3 times",
    ],
)
def test_ordinary_technical_text_is_left_alone(text):
    result = scrub(text)
    assert result.text == text
    assert result.count == 0


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_scrub_never_fails_and_is_idempotent(text):
    once = scrub(text)
    assert scrub(once.text).text == once.text
