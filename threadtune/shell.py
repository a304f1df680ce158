"""Shared plumbing for the CLI command modules: the settings, the store, the console, errors."""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from curation.errors import CurationError
from serving.errors import ServingError
from threadtune.settings import Settings, SettingsError, load_settings
from training.errors import TrainingError

console = Console()
err_console = Console(stderr=True)

#: Errors a user can act on: one line on stderr, exit code 2, never a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    SettingsError,
    CurationError,
    ServingError,
    TrainingError,
)

_settings: Settings | None = None

F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    """The settings, read once per process."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def set_settings(value: Settings | None) -> None:
    """Replace the process settings (the CLI's --data-dir option and tests use this)."""
    global _settings
    _settings = value


def open_db(s: Settings | None = None, *, create: bool = False):
    """Open the store of ``s`` (creating the data dir first when ``create``)."""
    from curation.store import connect

    s = s or settings()
    if create:
        s.data_dir.mkdir(parents=True, exist_ok=True)
    elif not s.db_path.exists():
        from curation.errors import StoreError

        raise StoreError(
            f"no store at {s.db_path}; run `threadtune init` (or set THREADTUNE_DATA_DIR)"
        )
    return connect(s.db_path)


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def store_error_message(err: sqlite3.OperationalError) -> str:
    """A one-line explanation of a SQLite failure; the transaction was rolled back, nothing is lost."""
    text = str(err)
    if "full" in text:
        return (f"the disk holding {settings().data_dir} is full ({text}); nothing was half-written: "
                "free some space and run the command again")
    if "locked" in text or "busy" in text:
        return f"the store is busy ({text}); another process holds it too long: retry in a moment"
    return f"store error: {text}; nothing was half-written"


def user_errors(fn: F) -> F:
    """Turn domain errors into a one-line error with exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            fail(str(err))
        except sqlite3.OperationalError as err:
            fail(store_error_message(err))
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
