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
