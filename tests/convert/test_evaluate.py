"""Agreement figures and the verdicts drawn from them (numpy only, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from convert.evaluate import compare
from convert.pipeline import _judge
from convert.report import Report
from convert.results import RuntimeCheck


def _report(outputs) -> Report:
    return Report(
        source="m.keras",
        source_kind="keras",
        signature="serving_default",
        output="m.tflite",
        mode="int8",
        mode_description="full integer",
        calibration=None,
        evaluation="eval.npz (4 samples)",
        conversion_seconds=1.0,
        original_bytes=4000,
        tflite_bytes=1000,
        runtime=RuntimeCheck("litert", "2.3.0", True, inputs=["x float32 (-1, 3)"]),
        threads=1,
        outputs=outputs,
    )


def test_classifier_agreement_and_accuracy() -> None:
    original = {"p": np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])}
    converted = {"p": np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.3, 0.7]])}
    (p,) = compare(original, converted, labels=np.array([0, 1, 1, 1]))
    assert p.classifier
    assert p.top1_agreement == 0.75
    assert p.accuracy_original == 0.75
    assert p.accuracy_tflite == 1.0
    assert p.max_abs_error == pytest.approx(0.2)
    assert p.mean_abs_error == pytest.approx(0.1)
    assert p.score == 0.75


def test_regressor_error_is_normalized_by_the_original_range() -> None:
    original = {"y": np.array([[0.0], [10.0], [5.0], [5.0]])}
    converted = {"y": np.array([[1.0], [10.0], [5.0], [5.0]])}
    (y,) = compare(original, converted, labels=np.array([0, 1, 2, 3]))
    assert not y.classifier
    assert y.top1_agreement is None
    assert y.accuracy_original is None  # labels score classifiers only
    assert y.normalized_error == pytest.approx(0.25 / 10)
    assert y.score == pytest.approx(1 - 0.025)


def test_nan_where_the_original_is_finite_fails_even_without_a_bar() -> None:
    original = {"y": np.ones((4, 2))}
    converted = {"y": np.array([[1, 1], [np.nan, 1], [1, np.inf], [1, 1]], np.float32)}
    outputs = compare(original, converted, labels=None)
    assert outputs[0].nonfinite == 2
    report = _report(outputs)
    _judge(report, samples=4)
    assert report.passed is False
    assert report.failure == (
        "output 'y' of the .tflite is NaN or infinite on 2 of 4 samples "
        "where the original is finite"
    )
    assert "FAILED: output 'y'" in report.table()


def test_missed_bar_fails_and_poor_agreement_warns() -> None:
    original = {"p": np.eye(4)}
    converted = {"p": np.roll(np.eye(4), 1, axis=1)}  # every top-1 differs
    outputs = compare(original, converted, labels=None)
    strict = _report(outputs)
    strict.min_agreement = 0.99
    _judge(strict, samples=4)
    assert strict.failure == "agreement 0.0000 of output 'p' is below --min-agreement 0.99"
    assert "min agreement 0.99: MISSED" in strict.table()
    lenient = _report(outputs)
    _judge(lenient, samples=4)
    assert lenient.passed is True
    assert "warning: output 'p' agrees poorly with the original (score 0)" in lenient.table()


def test_table_shows_sizes_runtime_and_outputs() -> None:
    original = {"p": np.eye(3)}
    outputs = compare(original, {"p": np.eye(3)}, labels=None)
    table = _report(outputs).table()
    assert "original 3.9 KiB, .tflite 1000 B, ratio 0.250" in table
    assert "loads and runs in litert 2.3.0" in table
    assert "x float32 (-1, 3)" in table
    assert "100.00%" in table
    failing = _report([])
    failing.runtime = RuntimeCheck("litert", "2.3.0", False, "uses the custom op 'X'", "custom_op")
    assert "FAILS in litert 2.3.0 (custom_op): uses the custom op 'X'" in failing.table()
