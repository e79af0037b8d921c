"""Build small picture classifiers with TFLite metadata through the converter CLI.

Run as a script (``python tests/picture_models.py OUT_DIR``) by the ``picture_models``
fixture, in the ``MODEL_BUILDER_PYTHON`` environment (it needs TensorFlow). The network
takes RGB pictures ``image`` (N, 12, 12, 3) and answers ``probs`` (N, 4); it is converted
by ``python -m convert`` from raw 0..255 pixels with ``--mean 127 --std 128`` and
``--labels`` into ``float32.tflite`` and ``int8.tflite``. Weights are random (fixed seed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LABELS = ("cat", "dog", "bird", "fish")
SIZE = 12
MEAN, STD = 127.0, 128.0  # raw 0..255 -> [-0.99, 1]: int8 codes are pixel - 128, no ties


def build(out_dir: Path) -> None:
    """Write ``float32.tflite``, ``int8.tflite`` and ``labels.txt`` into ``out_dir``."""
    import keras

    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(5)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax", name="probs")(x)
    source = out_dir / "pictures.keras"
    keras.Model(inputs, outputs).save(source)
    raw = np.random.default_rng(6).integers(0, 256, (40, SIZE, SIZE, 3)).astype(np.float32)
    np.savez(out_dir / "raw.npz", image=raw)
    labels = out_dir / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    # The converter verifies in this environment's own runtime, whatever the tests then use.
    env = {k: v for k, v in os.environ.items() if k != "SERVING_BACKEND"}
    for mode in ("float32", "int8"):
        result = subprocess.run(
            [
                *(sys.executable, "-m", "convert", str(source)),
                *("-o", str(out_dir / f"{mode}.tflite"), "--mode", mode),
                *("--calibration", str(out_dir / "raw.npz"), "--calibration-samples", "20"),
                *("--mean", str(MEAN), "--std", str(STD), "--labels", str(labels)),
                *("--name", "Pictures", "--version", "3"),
            ],
            cwd=REPO,
            env={**env, "PYTHONPATH": str(REPO)},
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"python -m convert ({mode}) failed:\n{result.stderr}")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
