"""What every listener needs: the settings and a per-thread store connection."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlite_utils import Database

from curation.store import connect
from threadtune.settings import Settings


@dataclass
class BotContext:
    """Settings plus one SQLite connection per thread (bolt runs listeners on a thread pool)."""

    settings: Settings
    _local: threading.local = field(default_factory=threading.local, repr=False)

    def db(self) -> Database:
        """This thread's connection to the store."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.settings.db_path)
            self._local.db = db
        return db
