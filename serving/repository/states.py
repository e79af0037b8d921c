"""Where a model version is, named once for TF Serving's and Triton's status answers."""

from __future__ import annotations

import enum


class VersionState(enum.Enum):
    """The life of one version in this process.

    ``START``: listed, never loaded (lazy: a request loads it). ``UNLOADED``: loaded once,
    then unloaded to make room or because it left the repository; a request loads it again.
    ``FAILED``: the last load failed; the next request tries again.
    """

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    UNLOADED = "UNLOADED"
    FAILED = "FAILED"

    @property
    def tf_serving(self) -> str:
        """TF Serving's ``ModelVersionStatus.State`` name (``GET /v1/models/{name}``)."""
        return _TF_SERVING[self]

    @property
    def triton(self) -> str:
        """Triton's repository-index state (``POST /v2/repository/index``)."""
        return _TRITON[self]

    @property
    def triton_reason(self) -> str:
        """The index's ``reason`` for a version in this state without an error."""
        return _REASONS.get(self, "")

    @property
    def ready(self) -> bool:
        """Whether the Open Inference Protocol calls the version ready (``/ready``).

        Loading is lazy and unloading is the repository's business, so readiness is
        "an inference request for it will be served", not "it is in memory now": a version
        never loaded (START) or unloaded to make room is ready, and loads on that request.
        Only a version whose last load failed is not, until a request loads it again.
        """
        return self is not VersionState.FAILED


# The one mapping. TF Serving reports an unloaded or failed version as END (with the load
# error in its status); Triton knows only READY, LOADING and UNAVAILABLE.
_TF_SERVING = {
    VersionState.START: "START",
    VersionState.LOADING: "LOADING",
    VersionState.AVAILABLE: "AVAILABLE",
    VersionState.UNLOADING: "UNLOADING",
    VersionState.UNLOADED: "END",
    VersionState.FAILED: "END",
}
_TRITON = {
    VersionState.START: "UNAVAILABLE",
    VersionState.LOADING: "LOADING",
    VersionState.AVAILABLE: "READY",
    VersionState.UNLOADING: "UNAVAILABLE",
    VersionState.UNLOADED: "UNAVAILABLE",
    VersionState.FAILED: "UNAVAILABLE",
}
_REASONS = {
    VersionState.START: "not loaded yet: the first request for it loads it",
    VersionState.UNLOADING: "being unloaded: the next request for it loads it again",
    VersionState.UNLOADED: "unloaded: the next request for it loads it again",
}
