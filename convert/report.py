"""The conversion report: what was converted, how small, how right, how fast, where it runs.

Printed as a readable table; written as JSON with ``--report``. A failed check raises
:class:`CheckFailed` carrying the report.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from convert.errors import EXIT_CHECK_FAILED, ConvertError
from convert.results import Latency, OutputAgreement, RuntimeCheck


@dataclass
class Report:
    """Everything measured in one conversion (JSON-serialisable via :meth:`to_dict`)."""

    source: str
    source_kind: str
    signature: str
    output: str
    mode: str
    mode_description: str
    calibration: str | None
    evaluation: str | None
    conversion_seconds: float
    original_bytes: int
    tflite_bytes: int
    runtime: RuntimeCheck
    threads: int
    outputs: list[OutputAgreement] = field(default_factory=list)
    latency: Latency | None = None
    min_agreement: float | None = None
    passed: bool = True
    failure: str | None = None  # why the output file is not written
    notes: list[str] = field(default_factory=list)
    conversion_path: str | None = None  # see convert.quantize.PATHS
    signatures: list[str] = field(default_factory=list)  # every key, in file order
    metadata: dict | None = None  # what was written into the model's TFLite metadata

    def fail(self, reason: str) -> None:
        """Record a failed check: the CLI then exits 3 and writes no model."""
        self.passed = False
        self.failure = reason

    @property
    def size_ratio(self) -> float:
        """.tflite size / original size."""
        return self.tflite_bytes / self.original_bytes if self.original_bytes else float("nan")

    def to_dict(self) -> dict:
        """The report as plain data, with derived figures (ratios, scores) included."""
        data = dataclasses.asdict(self)
        data["size_ratio"] = self.size_ratio
        for entry, output in zip(data["outputs"], self.outputs, strict=True):
            entry["score"] = output.score
        if self.latency is not None:
            data["latency"]["speedup"] = self.latency.speedup
        return data

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_dict` as indented JSON."""
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def table(self) -> str:
        """The report as aligned plain text."""
        keys = self.signatures or [self.signature]
        which = f"signature {keys[0]}" if len(keys) == 1 else f"signatures {', '.join(keys)}"
        rows: list[tuple[str, str]] = [
            ("source", f"{self.source} ({_KINDS[self.source_kind]}, {which})"),
            ("output", self.output),
            ("mode", f"{self.mode}: {self.mode_description}"),
            ("calibration", self.calibration or "none (not needed for this mode)"),
            ("evaluation", self.evaluation or "none"),
            ("conversion", f"{self.conversion_seconds:.1f} s{self._path_text()}"),
            (
                "size",
                f"original {_size(self.original_bytes)}, .tflite {_size(self.tflite_bytes)}, "
                f"ratio {self.size_ratio:.3f}",
            ),
        ]
        runtime = self.runtime
        where = f"{runtime.backend} {runtime.backend_version}"
        if runtime.loads:
            rows.append(("serving runtime", f"loads and runs in {where}"))
            rows += [("  input", spec) for spec in runtime.inputs]
            rows += [("  output", spec) for spec in runtime.outputs]
        else:
            rows.append(
                ("serving runtime", f"FAILS in {where} ({runtime.reason}): {runtime.error}")
            )
        if self.latency is not None:
            lat = self.latency
            rows.append(
                (
                    "latency (median)",
                    f"TensorFlow {lat.original_ms:.3g} ms, .tflite {lat.tflite_ms:.3g} ms, "
                    f"{lat.speedup:.3g}x faster ({_samples(lat.batch)}, {self.threads} thread(s), "
                    f"{lat.runs} runs)",
                )
            )
        if self.metadata:
            rows.append(("metadata", _metadata_text(self.metadata)))
        width = max(len(label) for label, _ in rows)
        lines = [f"{label.ljust(width)}  {value}" for label, value in rows]
        if self.outputs:
            lines += ["", *_agreement_table(self.outputs)]
        if self.min_agreement is not None:
            verdict = "passed" if self.passed else "MISSED"
            lines += ["", f"min agreement {self.min_agreement:g}: {verdict}"]
        lines += [note if note.startswith("warning:") else f"note: {note}" for note in self.notes]
        if self.failure is not None:
            lines += [f"FAILED: {self.failure}"]
        return "\n".join(lines)

    def _path_text(self) -> str:
        return "" if self.conversion_path is None else f" (path: {self.conversion_path})"


_KINDS = {"keras": "Keras", "saved_model": "SavedModel"}


def _metadata_text(metadata: dict) -> str:
    parts = []
    if metadata.get("labels"):
        parts.append(f"{metadata['labels']} labels on {', '.join(metadata['label_outputs'])}")
    for name, norm in metadata.get("normalization", {}).items():
        parts.append(f"{name} (raw - {norm['mean']}) / {norm['std']}")
    for key in ("name", "version"):
        if metadata.get(key):
            parts.append(f"{key} {metadata[key]!r}")
    return "; ".join(parts) or "provenance only"


def _agreement_table(outputs: list[OutputAgreement]) -> list[str]:
    several = any(o.signature is not None for o in outputs)
    header = [
        *(["signature"] if several else []),
        "output",
        "max |err|",
        "mean |err|",
        "top-1 agree",
        "norm. err",
        "acc. TF",
        "acc. .tflite",
    ]
    rows = [header] + [
        [
            *([o.signature or ""] if several else []),
            o.name,
            f"{o.max_abs_error:.4g}",
            f"{o.mean_abs_error:.4g}",
            _percent(o.top1_agreement),
            "-" if o.normalized_error is None else f"{o.normalized_error:.4g}",
            _percent(o.accuracy_original),
            _percent(o.accuracy_tflite),
        ]
        for o in outputs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _samples(count: int) -> str:
    return "1 sample" if count == 1 else f"batch of {count}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"


class CheckFailed(ConvertError):
    """The .tflite was made but fails a check: it does not run in the serving runtime, or
    it misses ``--min-agreement`` (exit status 3). ``report`` holds what was measured."""

    exit_code = EXIT_CHECK_FAILED

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report
