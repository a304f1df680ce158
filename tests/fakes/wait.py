"""Waiting in tests without sleeping blindly: :func:`eventually` polls until something happens,
:func:`stays` checks that something keeps holding (that nothing happened) for a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How often a condition is checked: fast enough for loopback servers, light on two shared cores.
INTERVAL_S = 0.02


def eventually(condition: Callable[[], T], timeout: float = 10.0, *,
               what: str | Callable[[], object] = "the condition", interval: float = INTERVAL_S) -> T:
    """Call ``condition`` until it returns something truthy and return that; AssertionError naming
    ``what`` (and the last value seen) after ``timeout`` seconds. ``what`` may be a callable, called
    only on failure, to describe the state then (which files still hold a token …)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g}s waiting for {described} (last value: {value!r})")
        time.sleep(interval)


def stays(condition: Callable[[], object], duration: float, *, what: str = "the condition",
          interval: float = INTERVAL_S) -> None:
    """Check ``condition`` again and again for ``duration`` seconds; AssertionError at the first
    falsy result. ``stays(lambda: slack.count("chat.postMessage") == 0, 0.5)`` says nothing was posted."""
    deadline = time.monotonic() + duration
    while True:
        value = condition()
        if not value:
            raise AssertionError(f"{what} stopped holding (value: {value!r})")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
