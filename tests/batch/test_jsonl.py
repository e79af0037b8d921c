"""JSONL in, on DirectRunner: the same numbers as a bare interpreter and as the function."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.batch.conftest import SKIP_WITHOUT_BEAM, by_instance, scored, write_jsonl
from tests.conftest import REPO
from tests.reference import reference_predict
from tests.server import running_server

pytest.importorskip("apache_beam", reason=SKIP_WITHOUT_BEAM)

RNG = np.random.default_rng(18)


def function_answers(model: Path, verb: str, bodies: list[dict[str, Any]]) -> list[Any]:
    """What the real function (functions-framework on loopback) answers to each body."""
    with running_server(model) as server:
        answers = []
        for body in bodies:
            r = requests.post(f"{server.url}/v1/models/model:{verb}", json=body, timeout=30)
            assert r.status_code == 200, r.text
            answers.append(r.json())
        return answers


def score(capsys, tmp_path: Path, model: Path, lines: list[Any], *extra: str):
    jsonl = write_jsonl(tmp_path / "in" / "rows.jsonl", lines)
    return scored(capsys, model, jsonl, tmp_path / "out", *extra)


@pytest.mark.parametrize("name", ["float32", "int8", "fixed_batch"])
def test_pixel_rows_equal_a_bare_interpreter_and_the_function(models, tmp_path, capsys, name):
    path = models / f"{name}.tflite"
    x = RNG.random((9, 8, 8, 1), dtype=np.float32)
    rows = [row.tolist() for row in x]
    run = score(capsys, tmp_path, path, rows)
    assert run.summary.startswith("python -m batch: 9 predicted, 0 errors in ")
    assert run.lines("errors") == []
    got = by_instance(run.lines("predictions"))
    assert len(got) == 9
    # One instance at a time: the fixed-batch model takes no other batch size.
    expected = [reference_predict(path, {"pixels": x[i : i + 1]})["output_0"][0] for i in range(9)]
    (answer,) = function_answers(path, "predict", [{"instances": rows}])
    for row, want, function in zip(rows, expected, answer["predictions"], strict=True):
        line = got[json.dumps(row, sort_keys=True)]
        assert set(line) == {"instance", "prediction"}  # no labels: the model has none
        np.testing.assert_allclose(line["prediction"], want, rtol=0, atol=1e-6)
        np.testing.assert_allclose(line["prediction"], function, rtol=0, atol=1e-6)


def test_several_inputs_and_outputs_by_name(models, tmp_path, capsys):
    path = models / "multi.tflite"
    a = RNG.random((5, 4), dtype=np.float32)
    b = RNG.random((5, 3), dtype=np.float32)
    rows = [{"a": a[i].tolist(), "b": b[i].tolist()} for i in range(5)]
    run = score(capsys, tmp_path, path, rows)
    got = by_instance(run.lines("predictions"))
    expected = reference_predict(path, {"a": a, "b": b})
    (answer,) = function_answers(path, "predict", [{"instances": rows}])
    for i, row in enumerate(rows):
        prediction = got[json.dumps(row, sort_keys=True)]["prediction"]
        assert set(prediction) == {"sum", "scores"}
        assert prediction.keys() == answer["predictions"][i].keys()
        for name in ("sum", "scores"):
            np.testing.assert_allclose(prediction[name], expected[name][i], rtol=0, atol=1e-6)
            np.testing.assert_allclose(
                prediction[name], answer["predictions"][i][name], rtol=0, atol=1e-6
            )


def test_signature_option_runs_the_named_signature(models, tmp_path, capsys):
    path = models / "two_signatures.tflite"
    rows = [[1.0, 2.0], [0.5, -4.0]]
    run = score(capsys, tmp_path, path, rows, "--signature", "scale")
    got = by_instance(run.lines("predictions"))
    assert got[json.dumps(rows[0])]["prediction"] == {"scaled": [3.0, 6.0], "total": [3.0]}
    assert got[json.dumps(rows[1])]["prediction"] == {"scaled": [1.5, -12.0], "total": [-3.5]}
    (answer,) = function_answers(path, "predict", [{"signature_name": "scale", "instances": rows}])
    assert [got[json.dumps(r)]["prediction"] for r in rows] == answer["predictions"]

    default = score(capsys, tmp_path / "default", path, [[1.0, 2.0, 3.0]])
    (line,) = default.lines("predictions")
    assert line["prediction"] == [2.0, 3.0, 4.0]  # serving_default: plus_one


def test_rows_of_different_lengths_run_in_their_own_batches(models, tmp_path, capsys):
    rows = [[1.0, 2.0, 3.0], [1.0], [4.0, 4.0], [2.0, 2.0, 2.0], [0.5]]
    run = score(capsys, tmp_path, models / "dynamic.tflite", rows)
    got = by_instance(run.lines("predictions"))
    assert {key: line["prediction"] for key, line in got.items()} == {
        json.dumps(row): [2.0 * sum(row)] for row in rows
    }


def test_bad_lines_are_error_lines_and_the_good_ones_are_still_predicted(models, tmp_path, capsys):
    good = [RNG.random((8, 8, 1)).round(4).tolist() for _ in range(4)]
    bad = {
        b"{oops": "malformed JSON in line",
        b"": "empty line: expected one JSON instance",
        b"[1, 2, 3]": "input 'pixels': expected shape [-1, 8, 8, 1], received [1, 3]",
        b'{"image": [1]}': "unknown input 'image'; the model's inputs are: pixels",
        b'{"b64": "aGVsbG8="}': "input 'pixels' takes pictures, but how to",
        b"\xff\xfe[1]": "malformed JSON in line",
        b'[[["a"]]]': "expected numbers",
    }
    lines: list[Any] = [good[0], *bad, good[1], good[2], good[3]]
    run = score(capsys, tmp_path, models / "float32.tflite", lines)
    assert run.summary.startswith(f"python -m batch: 4 predicted, {len(bad)} errors in ")
    predicted = by_instance(run.lines("predictions"))
    assert sorted(predicted) == sorted(json.dumps(row, sort_keys=True) for row in good)
    errors = {line["instance"]: line["error"] for line in run.lines("errors")}
    assert len(errors) == len(bad)  # every bad line exactly once
    source = str(tmp_path / "in" / "rows.jsonl")
    for text, message in bad.items():
        error = errors[text.decode("utf-8", errors="replace")]
        assert error.startswith(f"{source}: ")
        assert message in error


def test_the_digits_model_labels_pictures_sent_as_b64_like_classify(tmp_path, capsys, digits_model):
    examples = sorted((REPO / "model" / "examples").glob("*.png"))
    rows = [{"b64": base64.b64encode(p.read_bytes()).decode()} for p in examples]
    rows.append(RNG.random((8, 8, 1)).round(4).tolist())
    run = score(capsys, tmp_path, digits_model, rows)
    got = by_instance(run.lines("predictions"))
    assert len(got) == len(rows)
    # One body per instance: the function refuses pictures and numbers in one request,
    # while each line of a batch stands alone.
    predicted = function_answers(digits_model, "predict", [{"instances": [r]} for r in rows])
    classified = function_answers(digits_model, "classify", [{"examples": [r]} for r in rows])
    for row, predict, classify in zip(rows, predicted, classified, strict=True):
        line = got[json.dumps(row, sort_keys=True)]
        np.testing.assert_allclose(line["prediction"], predict["predictions"][0], atol=1e-6)
        assert line["labels"] == classify["results"][0]
        assert len(line["labels"]) == 5
    for path, row in zip(examples, rows, strict=False):
        assert got[json.dumps(row, sort_keys=True)]["labels"][0][0] == path.stem


def test_a_model_the_function_serves_compiled_is_scored_on_interpreters(
    capsys, tmp_path, engine_models
):
    """Over 1 MiB the function would use the compiled engine (one inference per process at
    a time); batch scoring keeps the interpreter pool, whose threads run in parallel."""
    model = engine_models / "mlp_int8.tflite"
    rows = RNG.standard_normal((6, 2048)).astype(np.float32).round(3)
    run = score(capsys, tmp_path, model, rows.tolist())
    loads = [
        json.loads(line)
        for line in run.stdout.splitlines()
        if line.startswith("{") and '"model loaded"' in line
    ]  # the launcher's check, then the pipeline's worker
    assert loads
    assert {(e["engine"], e["engine_reason"]) for e in loads} == {
        ("interpreter", "SERVING_ENGINE=interpreter")
    }
    want = reference_predict(model, {"features": rows})["output_0"]
    got = np.array([line["prediction"] for line in run.lines("predictions")])
    assert sorted(map(tuple, got.round(4))) == sorted(map(tuple, want.round(4)))
