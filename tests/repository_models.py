"""Build distinct models for the repository's memory tests (each its own weights).

Run as a script (``python tests/repository_models.py OUT_DIR``) by the ``repository_models``
fixture, in the ``MODEL_BUILDER_PYTHON`` environment (it needs TensorFlow). Writes
``mlp_0.tflite`` .. ``mlp_3.tflite``: float32, 512 -> 1024 -> 1024 -> 8 (6.3 MB each, over
the 1 MiB from which the compiled engine serves a model), each from its own seed, so no two
share a packed-weights file and their memory adds up as it would for different models.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

COUNT = 4


def mlp(seed: int) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((512,), name="features")
    hidden = tf.keras.layers.Dense(1024, activation="relu")(inputs)
    hidden = tf.keras.layers.Dense(1024, activation="relu")(hidden)
    outputs = tf.keras.layers.Dense(8, name="scores")(hidden)
    return tf.keras.Model(inputs, outputs)


def build(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(COUNT):
        converter = tf.lite.TFLiteConverter.from_keras_model(mlp(seed))
        (out / f"mlp_{seed}.tflite").write_bytes(converter.convert())


if __name__ == "__main__":
    build(Path(sys.argv[1]))
