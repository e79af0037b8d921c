"""Build the repository benchmark's distinct models (needs TensorFlow; run as a module).

``python -m bench.repository_models --variant full|quick`` writes ``mlp_0.tflite`` ..
``mlp_3.tflite`` into ``build/bench/repository-<VERSION>-<variant>/`` (kept between runs)
and prints their manifest as JSON. Each MLP has its own seed, so no two share a packed
weights file and their memory adds up as different models' would; float32, so that their
footprint is their size (``full``: 1024 -> 2048 -> 2048 -> 8, 25 MB each; ``quick``: 512 ->
1024 -> 1024 -> 8, 6.3 MB each).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from bench.models import BUILD

VERSION = "v1"  # bump when what is built changes: old caches are then ignored
COUNT = 4
WIDTHS = {"full": (1024, 2048), "quick": (512, 1024)}  # input width, hidden width


def cache_dir(variant: str) -> Path:
    """Where ``variant``'s models are kept."""
    return BUILD / f"repository-{VERSION}-{variant}"


def build(variant: str) -> dict:
    """Build the models (unless they are there) and return their manifest."""
    out = cache_dir(variant)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        return json.loads(manifest_path.read_text())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    width, hidden = WIDTHS[variant]
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for seed in range(COUNT):
        tf.keras.utils.set_random_seed(seed)
        inputs = tf.keras.Input((width,), name="features")
        x = tf.keras.layers.Dense(hidden, activation="relu")(inputs)
        x = tf.keras.layers.Dense(hidden, activation="relu")(x)
        outputs = tf.keras.layers.Dense(8, name="scores")(x)
        converter = tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inputs, outputs))
        with contextlib.redirect_stdout(sys.stderr):  # Keras prints its export: stdout is JSON
            flatbuffer = converter.convert()
        path = out / f"mlp_{seed}.tflite"
        path.write_bytes(flatbuffer)
        files.append(path.name)
    manifest = {
        "version": VERSION,
        "files": files,
        "width": width,
        "description": f"{COUNT} distinct float32 MLPs {width}->{hidden}->{hidden}->8",
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.repository_models")
    parser.add_argument("--variant", choices=sorted(WIDTHS), default="full")
    print(json.dumps(build(parser.parse_args().variant)))


if __name__ == "__main__":
    main()
