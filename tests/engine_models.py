"""Build the models the engine tests need: big enough for the compiled engine, or not for it.

Run as a script (``python tests/engine_models.py OUT_DIR``) by the ``engine_models`` fixture,
in the ``MODEL_BUILDER_PYTHON`` environment (it needs TensorFlow). Random weights, fixed seed.

- ``mlp.tflite``: float32, 2048 -> 2048 -> 16, 16.9 MB: over the 1 MiB from which the compiled
  engine serves a model, and big enough that a copy of its weights stands out of the noise.
- ``mlp_int8.tflite``: the same network, int8 inputs and outputs (4.3 MB).
- ``int64_input.tflite``: an int64 input (ids) times a 2 MB constant: LiteRT's TensorBuffer
  holds no int64, so the compiled engine cannot serve it.
- ``nonzero.tflite``: ``tf.where(x > 0)``, an output whose leading dimension is not the
  batch (the positions of the positive values): a compiled model's output buffers cannot be
  sized from the signature.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

RNG = np.random.default_rng(7)


def mlp() -> tf.keras.Model:
    tf.keras.utils.set_random_seed(7)
    inputs = tf.keras.Input((2048,), name="features")
    hidden = tf.keras.layers.Dense(2048, activation="relu")(inputs)
    outputs = tf.keras.layers.Dense(16, name="scores")(hidden)
    return tf.keras.Model(inputs, outputs)


def build(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = mlp()
    (out / "mlp.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [RNG.standard_normal((1, 2048)).astype(np.float32)] for _ in range(20)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    (out / "mlp_int8.tflite").write_bytes(converter.convert())

    weights = tf.constant(RNG.standard_normal((4, 131072)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.int64, name="ids")])
    def scaled(ids: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"values": tf.matmul(tf.cast(ids, tf.float32), weights)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [scaled.get_concrete_function()], tf.Module()
    )
    (out / "int64_input.tflite").write_bytes(converter.convert())

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def positive(x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"where": tf.cast(tf.where(x > 0), tf.int32)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [positive.get_concrete_function()], tf.Module()
    )
    (out / "nonzero.tflite").write_bytes(converter.convert())


if __name__ == "__main__":
    build(Path(sys.argv[1]))
