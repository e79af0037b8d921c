"""How close the .tflite is to the original, and how fast each runs.

Agreement is measured per output on held-out data: max and mean absolute error, and for
classifier outputs (shape ``(batch, classes)``, two or more classes) top-1 agreement and,
with labels, the accuracy of both. Other outputs count as regressors, scored by
``1 - mean |error| / range of the original output`` so one bar (``--min-agreement``) fits
both kinds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from convert.calibration import Dataset
from convert.errors import ConvertError
from convert.progress import progress
from convert.results import Latency, OutputAgreement
from convert.specs import Signature

if TYPE_CHECKING:
    from collections.abc import Mapping

Predict = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

BATCH = 64


def batches(source: Signature, data: Dataset) -> list[dict[str, np.ndarray]]:
    """The data cut into batches both models accept: the original's fixed batch size if it
    has one (whole batches only), else up to ``BATCH`` samples."""
    fixed = _fixed_batch(source)
    step = fixed or BATCH
    stop = len(data) - len(data) % step if fixed else len(data)
    if stop == 0:
        raise ConvertError(
            f"the evaluation data has {len(data)} samples, fewer than the model's fixed "
            f"batch size {step}"
        )
    return [{n: a[i : i + step] for n, a in data.arrays.items()} for i in range(0, stop, step)]


def predict_original(
    source: Signature, feeds: list[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The original model's outputs on every batch, concatenated."""
    pieces = [source.predict(feed) for feed in progress(feeds, total=len(feeds), desc="TensorFlow")]
    return {name: np.concatenate([p[name] for p in pieces]) for name in source.outputs}


def predict_tflite(predict: Predict, feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The .tflite's outputs on every batch, through the serving runtime's ``predict``."""
    pieces = [predict(feed) for feed in progress(feeds, total=len(feeds), desc="tflite")]
    return {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}


def compare(
    original: Mapping[str, np.ndarray],
    converted: Mapping[str, np.ndarray],
    labels: np.ndarray | None,
    signature: str | None = None,
) -> list[OutputAgreement]:
    """Per-output agreement; labels score the first classifier output."""
    missing = [name for name in original if name not in converted]
    if missing:
        where = "" if signature is None else f" (signature {signature!r})"
        raise ConvertError(f"the .tflite lacks output {missing[0]!r} of the original model{where}")
    results = []
    labelled = False
    for name, expected in original.items():
        actual = converted[name].astype(np.float64)
        expected = expected.astype(np.float64)
        count = min(len(expected), len(actual))
        expected, actual = expected[:count], actual[:count]
        error = np.abs(actual - expected)
        broken = np.isfinite(expected) & ~np.isfinite(actual)
        fields: dict[str, float | int | None] = {
            "nonfinite": int(broken.reshape(count, -1).any(axis=1).sum()) if count else 0
        }
        classifier = expected.ndim == 2 and expected.shape[1] >= 2
        if classifier:
            top_expected, top_actual = expected.argmax(axis=1), actual.argmax(axis=1)
            fields["top1_agreement"] = float(np.mean(top_expected == top_actual))
            if labels is not None and not labelled:
                labelled = True
                fields["accuracy_original"] = float(np.mean(top_expected == labels[:count]))
                fields["accuracy_tflite"] = float(np.mean(top_actual == labels[:count]))
        else:
            spread = float(expected.max() - expected.min()) if expected.size else 0.0
            scale = spread if spread > 0 else max(float(np.abs(expected).max(initial=0.0)), 1e-12)
            fields["normalized_error"] = float(error.mean() / scale) if error.size else 0.0
        results.append(
            OutputAgreement(
                name=name,
                classifier=classifier,
                max_abs_error=float(error.max(initial=0.0)),
                mean_abs_error=float(error.mean()) if error.size else 0.0,
                signature=signature,
                **fields,
            )
        )
    return results


def measure_latency(
    source: Signature,
    run_tflite: Callable[[dict[str, np.ndarray]], float],
    first_batch: dict[str, np.ndarray],
    budget_s: float = 3.0,
    runs: int = 50,
) -> Latency:
    """Median time of the original's signature call and of the .tflite's invoke on one
    sample (one batch for a model with a fixed batch size).

    ``run_tflite(sample)`` runs the .tflite once and returns its invoke time in ms. Each
    side gets a warm-up, then up to ``runs`` timed runs within ``budget_s`` seconds.
    """
    import tensorflow as tf

    keep = _fixed_batch(source) or 1
    sample = {name: array[:keep] for name, array in first_batch.items()}

    tensors = {s.name: tf.constant(sample[s.name], dtype=s.dtype) for s in source.inputs}

    def original() -> float:
        start = time.perf_counter()
        source.function(**tensors)
        return (time.perf_counter() - start) * 1000

    def tflite() -> float:
        return run_tflite(sample)

    timings = [_median_ms(f, budget_s, runs) for f in (original, tflite)]
    return Latency(timings[0][0], timings[1][0], min(timings[0][1], timings[1][1]), keep)


def _median_ms(run: Callable[[], float], budget_s: float, runs: int) -> tuple[float, int]:
    for _ in range(3):
        run()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < runs and (len(times) < 5 or time.perf_counter() < deadline):
        times.append(run())
    return statistics.median(times), len(times)


def _fixed_batch(source: Signature) -> int | None:
    """The batch size the original model insists on, if any."""
    sizes = {spec.shape[0] for spec in source.inputs if spec.shape}
    return next(iter(sizes)) if len(sizes) == 1 and None not in sizes else None
