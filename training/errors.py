"""Domain errors of training/."""


class TrainingError(Exception):
    """Base class for training, evaluation and registry errors a user can act on."""
