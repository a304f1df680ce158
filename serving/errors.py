"""Domain errors of serving/: model files, servers and the OpenAI-compatible client."""


class ServingError(Exception):
    """Base class for serving errors a user can act on."""


class ModelNotFound(ServingError):
    """A base model or adapter path is missing or broken; the message names the path and the fix."""


class ServerError(ServingError):
    """A model server failed to start, died, or answered with an error."""


class ServerTimeout(ServerError):
    """A model server did not answer within the timeout."""


class ServerUnavailable(ServerError):
    """No model server answers at the configured URL (not started, crashed, wrong URL)."""


class ServerRejected(ServerError):
    """The server refused the request itself (HTTP 4xx): a bad model name, an unsupported option."""
