"""One conversion from start to finish; the output file appears only if every check passes.

The ``.tflite`` is written to a hidden temporary file next to the target, loaded and run
there in the serving runtime, compared with the original, and only then renamed onto the
target (an atomic replace on POSIX). Any failure removes the temporary file.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convert import evaluate
from convert.calibration import Dataset, Preprocessing, load_dataset, split
from convert.errors import CheckFailed, ConvertError
from convert.quantize import MODES, NEEDS_CALIBRATION, convert
from convert.quiet import captured_stderr, quiet_tensorflow
from convert.report import Report
from convert.runtime import load_in_runtime
from convert.sources import InputSpec, Source, detect_kind, load_source

RANDOM_SAMPLES = 64
POOR_AGREEMENT = 0.9  # below this score, the report warns even without --min-agreement


@dataclass(frozen=True)
class Options:
    """What the user asked for (see :mod:`convert.cli` for the flags)."""

    source: Path
    output: Path
    mode: str = "int8"
    signature: str | None = None
    calibration: Path | None = None
    eval: Path | None = None
    calibration_samples: int = 200
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    min_agreement: float | None = None
    report: Path | None = None
    threads: int = 1


def check_options(options: Options) -> None:
    """The checks that need no TensorFlow: fail in milliseconds, not seconds."""
    detect_kind(options.source)
    if options.mode not in MODES:
        raise ConvertError(f"unknown mode {options.mode!r}; choose one of {', '.join(MODES)}")
    if options.mode in NEEDS_CALIBRATION and options.calibration is None:
        others = ", ".join(m for m in MODES if m not in NEEDS_CALIBRATION)
        raise ConvertError(
            f"--mode {options.mode} needs calibration data: pass --calibration PATH "
            f"(or choose a mode without it: {others})"
        )
    for flag, path in (("-o", options.output), ("--report", options.report)):
        if path is None:
            continue
        if path.is_dir():
            raise ConvertError(f"{flag} {path}: is a directory; give a file name")
        if not path.parent.is_dir():
            raise ConvertError(f"{flag} {path}: directory {path.parent} does not exist")
    for flag, path in (("--calibration", options.calibration), ("--eval", options.eval)):
        if path is not None and not path.exists():
            raise ConvertError(f"{flag} {path}: no such file or directory")


def run(options: Options) -> Report:
    """Convert, verify, and only then write ``options.output``; return the report.

    Raises :class:`ConvertError` for bad input and :class:`CheckFailed` (carrying the
    report) when the model does not run in the serving runtime or misses the bar.
    """
    check_options(options)
    quiet_tensorflow()
    with tempfile.TemporaryDirectory(prefix="convert-") as work, captured_stderr():
        import tensorflow as tf

        _limit_threads(tf, options.threads)
        source = load_source(options.source, options.signature, Path(work))
        calibration, held_out, notes = _data(options, source.inputs)
        started = time.perf_counter()
        tflite = convert(source.saved_model_dir, source.signature, options.mode, calibration)
        seconds = time.perf_counter() - started
    fd, temporary = tempfile.mkstemp(
        dir=options.output.parent, prefix=f".{options.output.name}.", suffix=".partial"
    )
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(tflite)
        _default_permissions(temporary)
        report = _verify(options, source, Path(temporary), calibration, held_out, seconds, notes)
        if options.report is not None:
            report.write_json(options.report)
        if report.failure is not None:
            raise CheckFailed(f"{report.failure}; {options.output} not written", report)
        os.replace(temporary, options.output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return report


def _default_permissions(path: str) -> None:
    """What ``open()`` would have given (mkstemp makes files private: 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _limit_threads(tf: Any, threads: int) -> None:
    """Give TensorFlow as many threads as the interpreter gets, for a fair latency figure."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already ran something in this process: keep its pools
        pass


def _data(
    options: Options, inputs: tuple[InputSpec, ...]
) -> tuple[Dataset | None, Dataset, list[str]]:
    """(calibration samples or None, evaluation samples, notes for the report)."""
    pre, notes = options.preprocessing, []
    calibration = evaluation = None
    if options.calibration is not None:
        data = load_dataset(options.calibration, inputs, pre, "--calibration")
        calibration, evaluation = split(data, options.calibration_samples, options.eval is not None)
        if evaluation is not None:
            notes.append(f"no --eval data: evaluated on {evaluation.origin}")
    if options.eval is not None:
        evaluation = load_dataset(options.eval, inputs, pre, "--eval")
    if evaluation is None:
        evaluation = _random(inputs)
        notes.append(f"no evaluation data: agreement measured on {evaluation.origin}")
    if options.mode not in NEEDS_CALIBRATION:
        calibration = None
    return calibration, evaluation, notes


def _random(inputs: tuple[InputSpec, ...]) -> Dataset:
    """Standard-normal floats (small integers for integer inputs), fixed seed."""
    rng = np.random.default_rng(0)
    arrays = {}
    for spec in inputs:
        shape = [RANDOM_SAMPLES if spec.shape[0] is None else spec.shape[0]]
        shape += [1 if d is None else d for d in spec.shape[1:]]
        if spec.dtype.kind == "f":
            arrays[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            arrays[spec.name] = rng.integers(0, 10, shape).astype(spec.dtype)
    count = len(next(iter(arrays.values())))
    return Dataset(arrays, None, f"{count} random samples")


def _verify(
    options: Options,
    source: Source,
    tflite_path: Path,
    calibration: Dataset | None,
    evaluation: Dataset,
    seconds: float,
    notes: list[str],
) -> Report:
    """Load the .tflite in the serving runtime and measure it against the original."""
    with captured_stderr():  # the runtime announces its delegates on fd 2
        model, runtime = load_in_runtime(tflite_path, options.threads)
    report = Report(
        source=str(options.source),
        source_kind=source.kind,
        signature=source.signature,
        output=str(options.output),
        mode=options.mode,
        mode_description=MODES[options.mode],
        calibration=None if calibration is None else _calibration_text(calibration),
        evaluation=evaluation.origin,
        conversion_seconds=seconds,
        original_bytes=source.size_bytes,
        tflite_bytes=tflite_path.stat().st_size,
        runtime=runtime,
        threads=options.threads,
        min_agreement=options.min_agreement,
        notes=notes,
    )
    if model is None:
        report.fail(f"the converted model does not run in the serving runtime: {runtime.error}")
        return report
    with model, captured_stderr():
        feeds = evaluate.batches(source, evaluation)
        original = evaluate.predict_original(source, feeds)
        converted = evaluate.predict_tflite(model, feeds)
        report.outputs = evaluate.compare(original, converted, evaluation.labels)
        report.latency = evaluate.measure_latency(source, model, feeds[0])
    _judge(report, len(evaluation))
    return report


def _judge(report: Report, samples: int) -> None:
    """Fail on non-finite outputs or a missed bar; without a bar, warn about poor agreement."""
    min_agreement = report.min_agreement
    broken = [o for o in report.outputs if o.nonfinite]
    if broken:
        report.fail(
            f"output {broken[0].name!r} of the .tflite is NaN or infinite on "
            f"{broken[0].nonfinite} of {samples} samples where the original is finite"
        )
        return
    # `not score >= bar` also catches a NaN score.
    if min_agreement is not None:
        missed = [o for o in report.outputs if not o.score >= min_agreement]
        if missed:
            worst = min(missed, key=lambda o: o.score if o.score == o.score else -math.inf)
            report.fail(
                f"agreement {worst.score:.4f} of output {worst.name!r} is below "
                f"--min-agreement {min_agreement:g}"
            )
        return
    for output in report.outputs:
        if not output.score >= POOR_AGREEMENT:
            report.notes.append(
                f"warning: output {output.name!r} agrees poorly with the original "
                f"(score {output.score:.3g}); --min-agreement makes this an error"
            )


def _calibration_text(calibration: Dataset) -> str:
    return f"{len(calibration)} samples of {calibration.origin}"
