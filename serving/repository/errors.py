"""The repository's errors, each a :class:`ServingError` carrying its HTTP status."""

from __future__ import annotations

from serving.errors import NotFound, ServiceUnavailable, ServingError


class RepositoryConfigError(ServingError):
    """``models.json`` (or the repository around it) cannot be used as written (503).

    Not the client's mistake, and not a crash either: the repository's operator fixes the
    file, and the next listing (``MODEL_REPOSITORY_POLL_SECONDS``) picks the fix up. The
    message names the file, the key, what was expected and what was received.
    """

    status_code = 503

    def __init__(self, file: str, key: str, expected: str, received: str) -> None:
        super().__init__(f"{file}: {key}: expected {expected}, received {received}")
        self.file = file
        self.key = key
        self.expected = expected
        self.received = received

    def _fields(self) -> tuple[str, str, str, str]:
        return self.file, self.key, self.expected, self.received

    # Equal when they say the same: a re-listing that finds the same problem is no change.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RepositoryConfigError):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())


class ModelNotFound(NotFound):
    """No such model, version or label in the repository (404, naming what exists)."""


class InsufficientMemory(ServiceUnavailable):
    """A version does not fit in the instance's memory, now or ever (503)."""
