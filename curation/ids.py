"""Row ids from payloads (button values, modal metadata, slash arguments), parsed strictly.

A button value or a modal's ``private_metadata`` comes back from Slack as we sent it, but a
hand-made or stale payload may carry anything: ``1.9`` must not act on row 1, and ``10**30`` must
not reach SQLite (which stores 64-bit integers) as an overflow.
"""

from __future__ import annotations

import re
from typing import Any

_DIGITS = re.compile(r"^[0-9]{1,19}$")
MAX_ID = 2**63 - 1


def parse_id(value: Any) -> int | None:
    """``value`` as a row id (a positive integer SQLite can hold), or None when it is not one.

    Accepts an int or a string of digits (a leading ``#`` is allowed); refuses floats, booleans,
    signs, blanks and numbers over 2**63 - 1."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.match(value.strip().removeprefix("#")):
        number = int(value.strip().removeprefix("#"))
    else:
        return None
    return number if 1 <= number <= MAX_ID else None
