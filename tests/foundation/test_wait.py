"""The test helpers that replace hand-written polling loops and blind sleeps."""

from __future__ import annotations

import threading

import pytest

from tests.fakes.wait import eventually, stays


def test_eventually_returns_the_first_truthy_value():
    seen = []
    assert eventually(lambda: seen.append(1) or (len(seen) >= 3 and seen[:]), 5) == [1, 1, 1]


def test_eventually_names_what_it_waited_for_and_the_last_value():
    with pytest.raises(AssertionError, match=r"after 0.1s waiting for the answer \(last value: \[\]\)"):
        eventually(lambda: [], 0.1, what="the answer")


def test_eventually_can_describe_the_state_at_the_timeout():
    state = {"left": ["a.db"]}
    with pytest.raises(AssertionError, match=r"waiting for \['a.db'\] to go"):
        eventually(lambda: not state["left"], 0.05, what=lambda: f"{state['left']} to go")


def test_stays_fails_as_soon_as_the_condition_breaks():
    box = {"posted": 0}
    threading.Timer(0.05, lambda: box.update(posted=1)).start()
    with pytest.raises(AssertionError, match="nothing posted stopped holding"):
        stays(lambda: box["posted"] == 0, 2.0, what="nothing posted")


def test_stays_holds_for_the_whole_duration():
    calls = []
    stays(lambda: calls.append(1) or True, 0.1)
    assert len(calls) >= 3
