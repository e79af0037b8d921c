"""One conversion from start to finish; the output file appears only if every check passes.

The ``.tflite`` is written to a hidden temporary file next to the target, loaded and run
there in the serving runtime, compared with the original signature by signature; its
TFLite metadata (labels, normalisation, name, provenance) is then added, the result checked
to answer exactly as before, and only then renamed onto the target (an atomic replace on
POSIX). Any failure removes the temporary file.
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
from convert.errors import ConvertError
from convert.metadata import Metadata, Normalization, normalization_on_raw, read_labels
from convert.metadata import attach as attach_metadata
from convert.quantize import MODES, NEEDS_CALIBRATION, convert_source
from convert.quiet import captured_stderr, quiet_tensorflow
from convert.report import CheckFailed, Report
from convert.runtime import SignatureRunners, load_in_runtime
from convert.sources import Source, detect_kind, load_source, renamed
from convert.specs import InputSpec

RANDOM_SAMPLES = 64
POOR_AGREEMENT = 0.9  # below this score, the report warns even without --min-agreement


@dataclass(frozen=True)
class Options:
    """What the user asked for (see :mod:`convert.cli` for the flags)."""

    source: Path
    output: Path
    mode: str = "int8"
    signatures: tuple[str, ...] = ()  # empty: every signature
    input_names: tuple[str, ...] = ()  # --input-names items (convert.names); empty: as saved
    output_names: tuple[str, ...] = ()
    calibration: Path | None = None
    eval: Path | None = None
    calibration_samples: int = 200
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    min_agreement: float | None = None
    report: Path | None = None
    threads: int = 1
    labels: Path | None = None
    name: str | None = None
    description: str | None = None
    version: str | None = None


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
    labels = None if options.labels is None else read_labels(options.labels)
    quiet_tensorflow()
    with tempfile.TemporaryDirectory(prefix="convert-") as work, captured_stderr():
        import tensorflow as tf

        _limit_threads(tf, options.threads)
        source = load_source(options.source, options.signatures or None, Path(work))
        source = renamed(source, options.input_names, options.output_names, Path(work))
        label_outputs = _label_outputs(source, labels, options.labels)
        calibrations, evaluations, notes = {}, {}, list(source.notes)
        for key, signature in source.signatures.items():
            calibration, evaluation, data_notes = _data(options, signature.inputs)
            calibrations[key], evaluations[key] = calibration, evaluation
            notes += [n for n in data_notes if n not in notes]
        started = time.perf_counter()
        usable = None if None in calibrations.values() else calibrations
        tflite, path, path_notes = convert_source(source, options.mode, usable)
        seconds = time.perf_counter() - started
        notes += path_notes
    fd, temporary = tempfile.mkstemp(
        dir=options.output.parent, prefix=f".{options.output.name}.", suffix=".partial"
    )
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(tflite)
        _default_permissions(temporary)
        report = _verify(options, source, Path(temporary), calibrations, evaluations, seconds)
        report.conversion_path = path
        report.notes = notes + report.notes
        if report.failure is None:
            metadata = _metadata(options, source, report, labels, label_outputs)
            before = _first_answers(Path(temporary), source, evaluations, options.threads)
            Path(temporary).write_bytes(attach_metadata(tflite, metadata))
            after = _first_answers(Path(temporary), source, evaluations, options.threads)
            if not _same(before, after):
                report.fail("the model answers differently once its metadata is written")
            report.tflite_bytes = Path(temporary).stat().st_size
            report.metadata = _metadata_summary(metadata)
        if options.report is not None:
            report.write_json(options.report)
        if report.failure is not None:
            raise CheckFailed(f"{report.failure}; {options.output} not written", report)
        os.replace(temporary, options.output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return report


def _label_outputs(
    source: Source, labels: list[str] | None, path: Path | None
) -> set[tuple[str, str]]:
    """(signature, output) pairs whose last axis has one class per label."""
    if labels is None:
        return set()
    found, shapes = set(), []  # shapes are listed sorted: signature outputs have no set order
    for key, signature in source.signatures.items():
        for name in signature.outputs:
            shape = signature.output_shapes.get(name)
            shapes.append(f"{name} {'unknown' if shape is None else tuple(shape)}")
            if shape is not None and len(shape) == 2 and shape[-1] == len(labels):
                found.add((key, name))
    if not found:
        raise ConvertError(
            f"--labels {path}: {len(labels)} labels but no output has {len(labels)} classes "
            f"on its last axis (outputs: {', '.join(sorted(shapes))})"
        )
    return found


def _normalization(options: Options) -> Normalization | None:
    """The preprocessing as ``(raw - mean) / std``, when it is known (given or images)."""
    pre = options.preprocessing
    images = any(p is not None and p.is_dir() for p in (options.calibration, options.eval))
    if not pre.explicit and not images:
        return None
    scale = pre.scale if pre.scale is not None else (1.0 / 255.0 if images else 1.0)
    return normalization_on_raw(scale, pre.mean, pre.std)


def _metadata(
    options: Options,
    source: Source,
    report: Report,
    labels: list[str] | None,
    label_outputs: set[tuple[str, str]],
) -> Metadata:
    """What goes into the model's TFLite metadata, provenance included."""
    norm = _normalization(options)
    normalization = {}
    if norm is not None:
        for key, signature in source.signatures.items():
            for spec in signature.inputs:
                if spec.dtype.kind == "f":
                    normalization[(key, spec.name)] = norm
    agreement = {
        (o.signature or source.signature, o.name): round(o.score, 6) for o in report.outputs
    }
    provenance = {
        "converter": "python -m convert",
        "source": str(options.source),
        "source_kind": source.kind,
        "conversion_path": report.conversion_path,
        "mode": options.mode,
        "evaluation": report.evaluation,
        "agreement": {
            key: {name: score for (k, name), score in agreement.items() if k == key}
            for key in source.keys
        },
    }
    return Metadata(
        name=options.name,
        description=options.description,
        version=options.version,
        labels=labels,
        label_outputs=label_outputs,
        normalization=normalization,
        provenance=provenance,
    )


def _metadata_summary(metadata: Metadata) -> dict[str, Any]:
    return {
        "name": metadata.name,
        "version": metadata.version,
        "labels": len(metadata.labels) if metadata.labels else 0,
        "label_outputs": sorted(f"{k}/{n}" for k, n in metadata.label_outputs),
        "normalization": {
            f"{k}/{n}": {"mean": list(v.mean), "std": list(v.std)}
            for (k, n), v in sorted(metadata.normalization.items())
        },
    }


def _first_answers(
    path: Path, source: Source, evaluations: dict[str, Dataset], threads: int
) -> dict[str, dict[str, np.ndarray]]:
    """Every signature's answers to its first evaluation batch, in the serving runtime."""
    with captured_stderr():
        runners = SignatureRunners(path, threads)
        return {
            key: runners.predict(key, evaluate.batches(sig, evaluations[key])[0])
            for key, sig in source.signatures.items()
        }


def _same(a: dict[str, dict[str, np.ndarray]], b: dict[str, dict[str, np.ndarray]]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].keys() == b[k].keys() and all(np.array_equal(a[k][n], b[k][n]) for n in a[k])
        for k in a
    )


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
    calibrations: dict[str, Dataset | None],
    evaluations: dict[str, Dataset],
    seconds: float,
) -> Report:
    """Load the .tflite in the serving runtime and measure each signature against the original.

    One signature runs through :class:`serving.Model` (the function's own code path);
    several run through the same backend's signature runners.
    """
    with captured_stderr():  # the runtime announces its delegates on fd 2
        model, runtime = load_in_runtime(tflite_path, options.threads)
    main = source.main
    calibration = calibrations[main.key]
    several = len(source.keys) > 1
    report = Report(
        source=str(options.source),
        source_kind=source.kind,
        signature=main.key,
        output=str(options.output),
        mode=options.mode,
        mode_description=MODES[options.mode],
        calibration=None if calibration is None else _calibration_text(calibration),
        evaluation=evaluations[main.key].origin,
        conversion_seconds=seconds,
        original_bytes=source.size_bytes,
        tflite_bytes=tflite_path.stat().st_size,
        runtime=runtime,
        threads=options.threads,
        min_agreement=options.min_agreement,
        signatures=source.keys,
    )
    if model is None:
        report.fail(f"the converted model does not run in the serving runtime: {runtime.error}")
        return report
    with model, captured_stderr():
        runners = SignatureRunners(tflite_path, options.threads) if several else None
        if runners is not None and sorted(runners.keys) != sorted(source.keys):
            report.fail(
                f"the serving runtime sees signatures {', '.join(runners.keys)}, "
                f"not {', '.join(source.keys)}"
            )
            return report
        for key, signature in source.signatures.items():
            evaluation = evaluations[key]
            feeds = evaluate.batches(signature, evaluation)
            original = evaluate.predict_original(signature, feeds)
            if runners is None:
                converted = evaluate.predict_tflite(model.predict, feeds)
            else:
                converted = evaluate.predict_tflite(
                    lambda feed, key=key: runners.predict(key, feed), feeds
                )
            report.outputs += evaluate.compare(
                original, converted, evaluation.labels, key if several else None
            )
        first = evaluate.batches(main, evaluations[main.key])[0]
        if runners is None:
            report.latency = evaluate.measure_latency(main, lambda s: model.run(s).invoke_ms, first)
        else:
            report.latency = evaluate.measure_latency(
                main, lambda s: runners.invoke_ms(main.key, s), first
            )
    _judge(report, len(evaluations[main.key]))
    return report


def _judge(report: Report, samples: int) -> None:
    """Fail on non-finite outputs or a missed bar; without a bar, warn about poor agreement."""
    min_agreement = report.min_agreement
    broken = [o for o in report.outputs if o.nonfinite]
    if broken:
        report.fail(
            f"output {broken[0].label} of the .tflite is NaN or infinite on "
            f"{broken[0].nonfinite} of {samples} samples where the original is finite"
        )
        return
    # `not score >= bar` also catches a NaN score.
    if min_agreement is not None:
        missed = [o for o in report.outputs if not o.score >= min_agreement]
        if missed:
            worst = min(missed, key=lambda o: o.score if o.score == o.score else -math.inf)
            report.fail(
                f"agreement {worst.score:.4f} of output {worst.label} is below "
                f"--min-agreement {min_agreement:g}"
            )
        return
    for output in report.outputs:
        if not output.score >= POOR_AGREEMENT:
            report.notes.append(
                f"warning: output {output.label} agrees poorly with the original "
                f"(score {output.score:.3g}); --min-agreement makes this an error"
            )


def _calibration_text(calibration: Dataset) -> str:
    return f"{len(calibration)} samples of {calibration.origin}"
