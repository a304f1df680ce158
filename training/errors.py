"""Domain errors of training/. The CLI turns them into one-line errors (exit 2), the bot into
ephemeral messages. Each message names the input, what was wrong and the fix.

Errors of the shared ground (a bad training config, a job or dataset that does not exist) are
curation's: ``curation.errors.ConfigError``, ``JobError`` and ``NotFound``."""


class TrainingError(Exception):
    """Base class for training, evaluation and registry errors a user can act on."""


class DatasetError(TrainingError):
    """A dataset version does not exist, or has no rows for the split a run needs."""


class RegistryError(TrainingError):
    """A model version that does not exist, or a promotion/rollback the registry refuses."""
