"""Domain errors of training/. The CLI turns them into one-line errors (exit 2), the bot into
ephemeral messages. Each message names the input, what was wrong and the fix."""


class TrainingError(Exception):
    """Base class for training, evaluation and registry errors a user can act on."""


class ConfigError(TrainingError):
    """A preset name, override or resolved training config is invalid (every problem in one message)."""


class DatasetError(TrainingError):
    """A dataset version does not exist, or has no rows for the split a run needs."""


class JobError(TrainingError):
    """A job that does not exist, or an action its state does not allow (cancel a finished job …)."""


class RegistryError(TrainingError):
    """A model version that does not exist, or a promotion/rollback the registry refuses."""
