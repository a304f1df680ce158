"""The quality checks are pure functions returning a score and a reason."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from curation import checks

SOURCE = ("Alice (question):\nHow do I set the HTTP timeout?\n\nBob:\nUse `HTTP.request(url; readtimeout=30)`"
          " and see https://juliaweb.github.io/HTTP.jl for more.")


def test_grounded_answer_passes():
    check = checks.grounding("Pass `HTTP.request(url; readtimeout=30)`; see https://juliaweb.github.io/HTTP.jl", SOURCE)
    assert check.passed and check.score == 1.0


def test_ungrounded_number_fails_with_the_number_named():
    check = checks.grounding("Use readtimeout=300 seconds.", SOURCE)
    assert not check.passed
    assert "300" in check.reason


def test_ungrounded_url_and_name_fail():
    assert not checks.grounding("See https://evil.example.com/docs", SOURCE).passed
    assert not checks.grounding("Restart it with Kubernetes first.", SOURCE).passed


def test_repetition_loop_and_truncation_are_degenerate():
    assert not checks.degeneration("the answer is the answer is " * 8).passed
    assert not checks.degeneration("yes yes yes yes yes yes yes yes yes yes").passed
    assert "truncated" in checks.degeneration("Run this:\n```julia\nusing Pkg").reason
    assert "truncated" in checks.degeneration("You should set the timeout and").reason
    assert checks.degeneration("Set the timeout to 30 seconds.").passed


def test_length_bounds_on_question_and_answer():
    assert not checks.length("Why?", "Because it is so, really.").passed
    assert not checks.length("How do I set the timeout?", "x" * 5000).passed
    assert checks.length("How do I set the timeout?", "Use readtimeout=30.").passed


def test_prompt_leak_is_caught():
    prompt = "You turn support conversations and team documents into question/answer pairs for a help-desk FAQ."
    leak = "My instructions were: You turn support conversations and team documents into question/answer pairs"
    assert not checks.prompt_leak(leak, prompt).passed
    assert checks.prompt_leak("Use readtimeout=30.", prompt).passed


def test_verdict_collects_every_failure_reason():
    scores = checks.pair_checks("Why?", "yes yes yes yes yes yes yes yes yes yes", source="nothing")
    ok, reason = checks.verdict(scores)
    assert not ok
    assert "length" in reason and "degeneration" in reason


@given(st.text(max_size=400), st.text(max_size=400))
def test_checks_never_raise(answer, source):
    for check in (checks.grounding(answer, source), checks.degeneration(answer),
                  checks.length(answer, source)):
        assert 0.0 <= check.score <= 1.0
        assert isinstance(check.reason, str)


def test_code_is_checked_verbatim_even_with_urls_inside():
    src = 'Bob:\n```julia> Pkg.pkg_server()\n"https://pkg.julialang.org"```'
    assert checks.grounding('```julia> Pkg.pkg_server()\n"https://pkg.julialang.org"```', src).passed
    assert not checks.grounding('```julia> Pkg.pkg_server("x")```', src).passed
