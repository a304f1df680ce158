"""Curation: the store, sources to text, prompts, quality checks, review state and datasets.

Never imports slack_bolt, slack_sdk, torch or transformers."""

import sys as _sys


def _import_sqlite_utils_without_dataframes() -> None:
    """Import sqlite-utils without pandas and numpy.

    sqlite-utils imports pandas and numpy when they are installed (they are, for `datasets`), only to
    map DataFrame and numpy column types, which the store never holds. That import is most of the
    bot's start-up time. An entry of None in ``sys.modules`` makes an import raise ImportError (the
    import system's documented behaviour), which sqlite-utils handles; the entries are removed
    right after, so any later ``import pandas`` works as usual.
    """
    blocked = [name for name in ("pandas", "numpy") if name not in _sys.modules]
    for name in blocked:
        _sys.modules[name] = None  # type: ignore[assignment]
    try:
        import sqlite_utils.db  # noqa: F401
    finally:
        for name in blocked:
            if _sys.modules.get(name, "") is None:
                del _sys.modules[name]


_import_sqlite_utils_without_dataframes()
