"""Build the small real TFLite models the serving tests run, with TensorFlow's converter.

Run as a script (``python tests/model_factory.py OUT_DIR``) by the ``models`` fixture,
in a separate process so that the test process never imports TensorFlow, and so that
the legacy (tflite-runtime, no TensorFlow) test run can borrow the dev environment's
TensorFlow through ``MODEL_BUILDER_PYTHON``. Weights are random with a fixed seed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from tensorflow.lite.tools import flatbuffer_utils

RNG = np.random.default_rng(0)


def _convert(converter: tf.lite.TFLiteConverter, out: Path) -> None:
    out.write_bytes(converter.convert())


def _int8(converter: tf.lite.TFLiteConverter, shape: tuple[int, ...]) -> tf.lite.TFLiteConverter:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [RNG.random((1, *shape), dtype=np.float32)] for _ in range(50)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter


def classifier(batch_size: int | None = None) -> tf.keras.Model:
    """8x8x1 images -> 10 probabilities, like the bundled digits model."""
    tf.keras.utils.set_random_seed(1)
    inputs = tf.keras.Input((8, 8, 1), batch_size=batch_size, name="pixels")
    x = tf.keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = tf.keras.layers.Flatten()(x)
    outputs = tf.keras.layers.Dense(10, activation="softmax")(x)
    return tf.keras.Model(inputs, outputs)


def two_in_two_out() -> tf.keras.Model:
    """Inputs ``a`` (4) and ``b`` (3); outputs ``sum`` (2) and ``scores`` (5)."""
    tf.keras.utils.set_random_seed(2)
    a = tf.keras.Input((4,), name="a")
    b = tf.keras.Input((3,), name="b")
    joined = tf.keras.layers.Concatenate()([a, b])
    first = tf.keras.layers.Dense(2, name="sum")(joined)
    second = tf.keras.layers.Dense(5, activation="sigmoid", name="scores")(joined)
    return tf.keras.Model({"a": a, "b": b}, {"sum": first, "scores": second})


def build(out_dir: Path) -> None:
    """Write every fixture model into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_model = classifier()
    _convert(tf.lite.TFLiteConverter.from_keras_model(keras_model), out_dir / "float32.tflite")
    _convert(
        _int8(tf.lite.TFLiteConverter.from_keras_model(keras_model), (8, 8, 1)),
        out_dir / "int8.tflite",
    )
    _convert(tf.lite.TFLiteConverter.from_keras_model(two_in_two_out()), out_dir / "multi.tflite")

    # Fixed batch of one: instances must run one invoke each.
    fixed = classifier(batch_size=1)
    fixed.set_weights(keras_model.get_weights())
    _convert(tf.lite.TFLiteConverter.from_keras_model(fixed), out_dir / "fixed_batch.tflite")

    # Dynamic in two dimensions: sums rows of any length.
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="values")])
    def row_sums(values: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"total": tf.reduce_sum(values, axis=1, keepdims=True) * 2.0}

    module = tf.Module()
    module.f = row_sums
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [row_sums.get_concrete_function()], module
    )
    _convert(converter, out_dir / "dynamic.tflite")

    # No signature def: tensors are named by their tensor names.
    model = flatbuffer_utils.read_model(str(out_dir / "float32.tflite"))
    model.signatureDefs = []
    flatbuffer_utils.write_model(model, str(out_dir / "no_signature.tflite"))

    # An op version no runtime has (what an old runtime sees with a newer converter's model).
    model = flatbuffer_utils.read_model(str(out_dir / "float32.tflite"))
    for code in model.operatorCodes:
        code.version = 99
    flatbuffer_utils.write_model(model, str(out_dir / "op_version.tflite"))

    # A TF op with no TFLite kernel, kept as a custom op.
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def bessel(x: tf.Tensor) -> tf.Tensor:
        return tf.math.bessel_i0e(x)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([bessel.get_concrete_function()])
    converter.allow_custom_ops = True
    _convert(converter, out_dir / "custom_op.tflite")

    (out_dir / "not_a_model.tflite").write_bytes(b"this is not a flatbuffer\n" * 4)

    # The converter's sources, which the server refuses with the command that converts them.
    keras_model.save(out_dir / "classifier.keras")
    keras_model.save(out_dir / "classifier.h5")
    keras_model.export(str(out_dir / "classifier_saved_model"), verbose=False)

    two_signatures(out_dir / "two_signatures.tflite")
    half_plus_two(out_dir / "half_plus_two.tflite")
    half_plus_three(out_dir / "half_plus_three.tflite")


def two_signatures(out: Path) -> None:
    """Signatures ``serving_default`` (``x`` (3) -> ``plus_one``) and ``scale`` (``a`` (2) ->
    ``scaled``, ``total``) in one model, from a SavedModel with both."""

    class TwoSignatures(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def plus_one(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"plus_one": x + 1.0}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="a")])
        def scale(self, a: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"scaled": a * 3.0, "total": tf.reduce_sum(a, axis=1, keepdims=True)}

    module = TwoSignatures()
    _saved_and_converted(module, {"serving_default": module.plus_one, "scale": module.scale}, out)


def _saved_and_converted(module: tf.Module, signatures: dict, out: Path) -> None:
    """``module`` saved with ``signatures`` and converted with every one of them."""
    import tempfile

    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(module, saved, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(signatures))
        _convert(converter, out)


def half_plus_two(out: Path) -> None:
    """TensorFlow Serving's test model ``saved_model_half_plus_two`` as TFLite: ``x`` [-1, 1]
    to ``y = 0.5 x + 2`` (``serving_default``, ``regress_x_to_y``, ``classify_x_to_y`` with
    output ``scores``) and ``y2 = 0.5 x + 3`` (``regress_x_to_y2``). TF Serving's regress
    and classify signatures parse tf.Example strings; TFLite has no such op, so here they
    take ``x`` itself, as its TFLite test model does."""
    spec = tf.TensorSpec([None, 1], tf.float32, name="x")

    class HalfPlusTwo(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = tf.Variable(0.5), tf.Variable(2.0), tf.Variable(3.0)

        @tf.function(input_signature=[spec])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": self.a * x + self.b}

        @tf.function(input_signature=[spec])
        def regress_y(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"outputs": self.a * x + self.b}

        @tf.function(input_signature=[spec])
        def regress_y2(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"outputs": self.a * x + self.c}

        @tf.function(input_signature=[spec])
        def classify(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"scores": self.a * x + self.b}

    module = HalfPlusTwo()
    signatures = {
        "serving_default": module.predict,
        "regress_x_to_y": module.regress_y,
        "regress_x_to_y2": module.regress_y2,
        "classify_x_to_y": module.classify,
    }
    _saved_and_converted(module, signatures, out)


def half_plus_three(out: Path) -> None:
    """``saved_model_half_plus_three`` (TF Serving's REST API guide) as TFLite: ``x`` [-1] to
    ``y = 0.5 x + 3``; its regress signature is named ``tensorflow/serving/regress``."""
    spec = tf.TensorSpec([None], tf.float32, name="x")

    class HalfPlusThree(tf.Module):
        @tf.function(input_signature=[spec])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": 0.5 * x + 3.0}

        @tf.function(input_signature=[spec])
        def regress(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"outputs": 0.5 * x + 3.0}

    module = HalfPlusThree()
    signatures = {"serving_default": module.predict, "tensorflow/serving/regress": module.regress}
    _saved_and_converted(module, signatures, out)


if __name__ == "__main__":
    build(Path(sys.argv[1]))
