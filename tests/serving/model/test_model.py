"""serving.model: the Python API on real models built by TensorFlow."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from serving.errors import BadRequest, ModelLoadError, ServingError
from serving.model import Model
from tests.conftest import load_or_skip
from tests.reference import reference_predict

RNG = np.random.default_rng(42)


def images(n: int) -> np.ndarray:
    return RNG.random((n, 8, 8, 1), dtype=np.float32)


@pytest.mark.parametrize("name", ["float32", "int8"])
def test_predict_matches_the_interpreter(models, name):
    x = images(5)
    with load_or_skip(models / f"{name}.tflite") as model:
        prediction = model.run({"pixels": x})
    expected = reference_predict(models / f"{name}.tflite", {"pixels": x})["output_0"]
    assert prediction.outputs["output_0"].shape == (5, 10)
    assert prediction.outputs["output_0"].dtype == np.float32
    np.testing.assert_allclose(prediction.outputs["output_0"], expected, atol=1e-6)
    assert (prediction.batch_size, prediction.invokes) == (5, 1)
    assert prediction.invoke_ms > 0


def test_describes_quantized_tensors(models):
    with load_or_skip(models / "int8.tflite") as model:
        (spec,) = model.inputs
        assert (spec.name, spec.shape, spec.dtype.name) == ("pixels", (-1, 8, 8, 1), "int8")
        assert spec.quantized
        assert spec.scale > 0
        assert spec.client_dtype == np.float32
        assert [s.key for s in model.signatures] == ["serving_default"]
        assert model.default.main
        assert model.backend.name in ("litert", "tflite_runtime", "tensorflow")


def test_the_digits_model_classifies_digits(digits_model):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images[-200:] / 16.0).astype(np.float32)[..., None]
    with load_or_skip(digits_model) as model:
        (name,) = (s.name for s in model.inputs)
        probabilities = next(iter(model.predict({name: x}).values()))
    accuracy = np.mean(probabilities.argmax(axis=1) == digits.target[-200:])
    assert accuracy > 0.9


def test_two_inputs_two_outputs(models):
    a, b = RNG.random((3, 4), dtype=np.float32), RNG.random((3, 3), dtype=np.float32)
    with load_or_skip(models / "multi.tflite") as model:
        outputs = model.predict({"a": a, "b": b})
    expected = reference_predict(models / "multi.tflite", {"a": a, "b": b})
    assert set(outputs) == {"sum", "scores"}
    for name in ("sum", "scores"):
        np.testing.assert_allclose(outputs[name], expected[name], rtol=1e-5, atol=1e-6)


def test_fixed_batch_of_one_runs_instance_by_instance(models):
    x = images(3)
    with load_or_skip(models / "fixed_batch.tflite") as model:
        prediction = model.run({"pixels": x})
    assert (prediction.batch_size, prediction.invokes) == (3, 3)
    expected = np.concatenate(
        [
            reference_predict(models / "float32.tflite", {"pixels": x[i : i + 1]})["output_0"]
            for i in range(3)
        ]
    )
    np.testing.assert_allclose(prediction.outputs["output_0"], expected, atol=1e-6)


def test_large_batches_are_chunked(models):
    x = images(5)
    with load_or_skip(models / "float32.tflite", max_batch_size=2) as model:
        prediction = model.run({"pixels": x})
    assert prediction.invokes == 3
    expected = reference_predict(models / "float32.tflite", {"pixels": x})["output_0"]
    np.testing.assert_allclose(prediction.outputs["output_0"], expected, atol=1e-6)


def test_dynamic_dimensions_resize_between_calls(models):
    with load_or_skip(models / "dynamic.tflite") as model:
        assert model.inputs[0].shape == (-1, -1)
        for shape in [(2, 3), (4, 7), (2, 3), (1, 1)]:
            x = RNG.random(shape, dtype=np.float32)
            total = model.predict({"values": x})["total"]
            np.testing.assert_allclose(total[:, 0], x.sum(axis=1) * 2, rtol=1e-5)


def test_without_signature_tensors_are_named_by_tensor_name(models):
    with load_or_skip(models / "no_signature.tflite") as model:
        # No signature def: one default signature named by the tensors themselves.
        assert [s.key for s in model.signatures] == ["serving_default"]
        (spec,) = model.inputs
        output = model.predict({spec.name: images(2)})
    assert len(output) == 1
    assert next(iter(output.values())).shape == (2, 10)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"pixel": np.zeros((1, 8, 8, 1))},
            "unknown input 'pixel'; the model's inputs are: pixels",
        ),
        ({}, "missing input 'pixels'"),
        (
            {"pixels": np.zeros((1, 8, 8, 2))},
            r"input 'pixels': expected shape \[-1, 8, 8, 1\], received \[1, 8, 8, 2\]",
        ),
        (
            {"pixels": np.zeros((1, 64))},
            r"input 'pixels': expected shape \[-1, 8, 8, 1\], received \[1, 64\]",
        ),
        (
            {"pixels": np.zeros((2, 8, 7, 1))},
            r"input 'pixels': expected shape \[-1, 8, 8, 1\], received \[2, 8, 7, 1\]",
        ),
        ({"pixels": [[[["x"]]]]}, "input 'pixels': expected numbers, received strings"),
        # An array of strings, not numpy's dtype ('<U1').
        (
            {"pixels": np.full((1, 8, 8, 1), "x")},
            "^input 'pixels': expected numbers, received strings$",
        ),
        ({"pixels": np.full((1, 8, 8, 1), np.nan)}, "NaN or infinite values cannot be quantized"),
    ],
)
def test_bad_inputs_are_400_and_the_model_still_works(models, inputs, message):
    with load_or_skip(models / "int8.tflite") as model:
        with pytest.raises(BadRequest, match=message) as caught:
            model.predict(inputs)
        assert caught.value.status_code == 400
        assert model.predict({"pixels": images(1)})["output_0"].shape == (1, 10)


def test_a_trailing_unit_dimension_may_be_left_out_or_added(models):
    """What the graph accepts: [1, 8, 8] is [1, 8, 8, 1] with the same 64 values."""
    x = images(2)
    with load_or_skip(models / "int8.tflite") as model:
        expected = model.predict({"pixels": x})["output_0"]
        np.testing.assert_array_equal(model.predict({"pixels": x[..., 0]})["output_0"], expected)
        np.testing.assert_array_equal(
            model.predict({"pixels": x[..., np.newaxis]})["output_0"], expected
        )


def test_inputs_must_agree_on_the_batch(models):
    with (
        load_or_skip(models / "multi.tflite") as model,
        pytest.raises(
            BadRequest, match="inputs disagree on the number of instances: a has 2, b has 3"
        ),
    ):
        model.predict({"a": np.zeros((2, 4)), "b": np.zeros((3, 3))})


@pytest.mark.parametrize(
    ("name", "reason", "message"),
    [
        ("missing.tflite", "missing", "model file not found: .*missing.tflite"),
        ("not_a_model.tflite", "not_tflite", "not_a_model.tflite is not a TFLite flatbuffer"),
        ("custom_op.tflite", "custom_op", "uses the custom op 'BesselI0e', which the .* runtime"),
        ("op_version.tflite", "op_version", "needs op CONV_2D version 99, newer than the"),
    ],
)
def test_load_errors_name_the_file_and_the_cause(models, name, reason, message):
    with pytest.raises(ModelLoadError, match=message) as caught:
        Model.load(models / name, backend=os.environ.get("SERVING_BACKEND"))
    assert caught.value.reason == reason
    assert caught.value.status_code == 503


def test_op_version_error_hints_at_litert_on_other_backends(models):
    from serving.model.backend import select_backend

    backend = select_backend(os.environ.get("SERVING_BACKEND"))
    with pytest.raises(ModelLoadError) as caught:
        Model.load(models / "op_version.tflite", backend=backend.name)
    if backend.name == "litert":
        assert "upgrade ai-edge-litert" in str(caught.value)
    else:
        assert "install ai-edge-litert" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("classifier.keras", "a Keras model (.keras archive)"),
        ("classifier.h5", "an HDF5 file (a Keras .h5 model)"),
        ("classifier_saved_model", "a TensorFlow SavedModel folder"),
    ],
)
def test_a_model_the_converter_takes_is_refused_with_the_command_that_converts_it(
    models, name, kind
):
    path = models / name
    with pytest.raises(ModelLoadError) as caught:
        Model.load(path, backend=os.environ.get("SERVING_BACKEND"))
    assert str(caught.value) == (
        f"{path} is {kind}, not a TFLite model: convert it first "
        f"(python -m convert {path} -o {path.with_suffix('.tflite')}) and serve the .tflite file"
    )
    assert (caught.value.reason, caught.value.status_code) == ("not_tflite", 503)


def test_a_directory_is_not_a_model(tmp_path):
    with pytest.raises(ModelLoadError, match="model path is a directory"):
        Model.load(tmp_path)


def test_closed_model_refuses_to_predict(models):
    model = load_or_skip(models / "float32.tflite")
    with model:
        model.predict({"pixels": images(1)})
    with pytest.raises(ServingError, match="the model has been closed") as caught:
        model.predict({"pixels": images(1)})
    assert caught.value.status_code == 503


def test_pool_runs_threads_in_parallel_and_never_exceeds_its_size(models):
    inputs = [images(4) for _ in range(24)]
    expected = [
        reference_predict(models / "int8.tflite", {"pixels": x})["output_0"] for x in inputs
    ]
    results: list[np.ndarray | None] = [None] * len(inputs)
    with load_or_skip(models / "int8.tflite", pool_size=3) as model:
        assert model.runners == 1  # the cold load builds exactly one
        barrier = threading.Barrier(8)

        def work(worker: int) -> None:
            barrier.wait()
            for i in range(worker, len(inputs), 8):
                results[i] = model.predict({"pixels": inputs[i]})["output_0"]

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert 1 <= model.runners <= 3
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
