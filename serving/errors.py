"""One error hierarchy for the whole runtime: every error carries its HTTP status.

The HTTP layer turns any :class:`ServingError` into ``{"error": message}`` with
``status_code``; anything else is an unexpected failure (500, traceback logged).
"""

from __future__ import annotations

import enum


class ServingError(Exception):
    """Base class: a message meant for the client and the HTTP status it maps to."""

    status_code: int = 500

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class BadRequest(ServingError):
    """The request is malformed or does not fit the model (400)."""

    status_code = 400


class NotFound(ServingError):
    """No such route, model or version (404)."""

    status_code = 404


class MethodNotAllowed(ServingError):
    """The route exists but not for this method (405); ``allow`` lists the methods."""

    status_code = 405

    def __init__(self, message: str, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow


class PayloadTooLarge(ServingError):
    """The request body is over the configured limit (413)."""

    status_code = 413


class RequestTimeout(ServingError):
    """The request body did not arrive within ``BODY_TIMEOUT_SECONDS`` (408)."""

    status_code = 408


class ServiceUnavailable(ServingError):
    """The server cannot take the request now; ``retry_after`` seconds is a fair wait (503)."""

    status_code = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelControlRefused(ServingError):
    """Triton's explicit model load or unload, which this server does not take (400, as
    Triton's INVALID when its model control mode is not EXPLICIT: a request this server
    never serves, not a failure of it)."""

    status_code = 400


class UnsupportedMediaType(ServingError):
    """The body's ``Content-Encoding`` (or type) is one the server cannot decode (415)."""

    status_code = 415


class LoadFailure(str, enum.Enum):
    """Why a model could not be loaded (a string, for logs and comparisons)."""

    MISSING = "missing"  # no such file, bucket or object
    NOT_TFLITE = "not_tflite"  # not a TFLite flatbuffer
    CUSTOM_OP = "custom_op"  # needs an op the runtime lacks
    OP_VERSION = "op_version"  # needs a newer runtime
    SOURCE = "source"  # the download failed
    BACKEND = "backend"  # no interpreter could be imported
    ENGINE = "engine"  # the engine SERVING_ENGINE forces cannot serve this model
    INVALID = "invalid"  # anything else the runtime refused

    def __str__(self) -> str:
        return self.value


class ModelLoadError(ServingError):
    """The model could not be loaded (503: the next request tries again)."""

    status_code = 503

    def __init__(self, message: str, reason: LoadFailure | str) -> None:
        super().__init__(message)
        self.reason = LoadFailure(reason)
