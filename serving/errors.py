"""Domain errors of serving/: model files, servers and the OpenAI-compatible client."""


class ServingError(Exception):
    """Base class for serving errors a user can act on."""


class ModelNotFound(ServingError):
    """A base model or adapter path is missing or broken; the message names the path and the fix."""


class ServerError(ServingError):
    """A model server failed to start, died, or answered with an error."""
