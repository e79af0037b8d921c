"""What a conversion measures: output agreement, latency, the serving-runtime check.

Plain data at the bottom of ``convert/``: nothing here imports another module of the
package, numpy, TensorFlow or the serving runtime, so the report (and anything that only
reads results) can be imported on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutputAgreement:
    """How one output of the .tflite compares with the original model's."""

    name: str
    classifier: bool
    max_abs_error: float
    mean_abs_error: float
    top1_agreement: float | None = None  # classifiers
    normalized_error: float | None = None  # regressors: mean |error| / range
    accuracy_original: float | None = None  # with labels, first classifier output
    accuracy_tflite: float | None = None
    nonfinite: int = 0  # samples where the .tflite gives NaN/inf and the original does not
    signature: str | None = None  # set when the model has several signatures

    @property
    def label(self) -> str:
        """``'name'``, or ``'name' of signature 'key'`` for a multi-signature model."""
        if self.signature is None:
            return repr(self.name)
        return f"{self.name!r} of signature {self.signature!r}"

    @property
    def score(self) -> float:
        """What ``--min-agreement`` compares: top-1 agreement, or 1 - normalized error."""
        if self.top1_agreement is not None:
            return self.top1_agreement
        return 1.0 - (self.normalized_error or 0.0)


@dataclass(frozen=True)
class Latency:
    """Median invoke time of each, in milliseconds, over ``runs`` runs of ``batch`` samples."""

    original_ms: float
    tflite_ms: float
    runs: int
    batch: int = 1

    @property
    def speedup(self) -> float:
        """How many times faster the .tflite is (original / tflite)."""
        return self.original_ms / self.tflite_ms if self.tflite_ms > 0 else float("inf")


@dataclass(frozen=True)
class RuntimeCheck:
    """Whether the .tflite loads in the serving runtime, with which backend, and its tensors."""

    backend: str
    backend_version: str
    loads: bool
    error: str | None = None
    reason: str | None = None  # ModelLoadError.reason: custom_op, op_version, ...
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
