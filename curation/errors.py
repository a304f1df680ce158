"""Domain errors of curation/. The CLI turns them into one-line errors (exit 2), the bot into
ephemeral messages. Each message names the input, what was wrong and the fix."""


class CurationError(Exception):
    """Base class for errors a user can act on."""


class StoreError(CurationError):
    """The SQLite store is missing, locked or not a threadtune store."""


class ImportFormatError(CurationError):
    """An export, document or dataset file is malformed; the message names the file (and line)."""


class NotFound(CurationError):
    """A candidate, dataset, document or job that does not exist."""


class Forbidden(CurationError):
    """The acting user lacks the role an action needs; the message says who can do it."""


class JobError(CurationError):
    """A job that does not exist, or an action its state does not allow (cancel a finished job …)."""


class ConfigError(CurationError):
    """A preset name, override or training config is invalid (every problem in one message)."""
