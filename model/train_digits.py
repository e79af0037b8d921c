"""Train the bundled digits classifier and quantize it into ``model/quantized_model.tflite``.

One command (``make model``) rebuilds the bundled model from scratch, with no download:

1. trains a small CNN on scikit-learn's bundled 8x8 digits with a fixed seed;
2. saves it as a Keras model, plus ``calibration.npz`` and ``eval.npz`` (held-out, with
   ``labels``) keyed by the model's input name, and ``labels.txt`` (``0``..``9``), in the
   build directory;
3. runs the converter CLI (``python -m convert``) in ``int8`` mode, which writes the
   ``.tflite`` only once it has loaded and run in the serving runtime and agrees with the
   Keras model on the held-out digits, with its TFLite metadata: the labels and the input
   normalisation ``(pixel - 0) / 255`` on raw pixels.

Raw pixels: an 8x8 grey picture, 0..255 (0 background, 255 full ink). scikit-learn's
digits hold 0..16, so a raw pixel is ``value * 255 / 16``; the data files hold raw pixels
and the CLI's ``--std 255`` maps them to the model's input. Input: float32
``(N, 8, 8, 1)`` in 0..1 (``value / 16``, i.e. ``pixel / 255``). Output: 10 softmax
probabilities, labelled ``0``..``9``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
INPUT_NAME = "pixels"
OUTPUT_NAME = "probabilities"
SEED = 0
EVAL_FRACTION = 0.2
RAW_MAX = 255.0  # a raw grey pixel: 0..255; the model's input is pixel / RAW_MAX


def load_digits_split(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_eval, y_eval): digits as float32 (N, 8, 8, 1) in 0..1, stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_train, x_eval, y_train, y_eval = train_test_split(
        x, y, test_size=EVAL_FRACTION, random_state=seed, stratify=y
    )
    return x_train, y_train, x_eval, y_eval


def build_model():  # -> keras.Model (keras imported lazily: it imports TensorFlow)
    """The CNN: two 3x3 convolutions, max-pooling, a small dense head, softmax over 10."""
    import keras

    inputs = keras.Input(shape=(8, 8, 1), name=INPUT_NAME)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dropout(0.2, seed=SEED)(x)
    outputs = keras.layers.Dense(10, activation="softmax", name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def train(build_dir: Path, epochs: int) -> Path:
    """Train with a fixed seed; write the Keras model and the .npz files; return the model path."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()

    x_train, y_train, x_eval, y_eval = load_digits_split()
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, shuffle=True, verbose=2)
    _, accuracy = model.evaluate(x_eval, y_eval, verbose=0)
    print(f"keras accuracy on {len(x_eval)} held-out digits: {accuracy:.4f}", file=sys.stderr)

    build_dir.mkdir(parents=True, exist_ok=True)
    keras_path = build_dir / "digits.keras"
    # Saved without the optimizer's state, so the file holds what is deployed: the weights.
    inference_model = build_model()
    inference_model.set_weights(model.get_weights())
    inference_model.save(keras_path)
    # Calibration: training images (what the model was fitted on); eval: held out, with labels.
    # Both as raw 0..255 pixels: the converter normalises them (--std 255) and writes that
    # normalisation into the model's metadata.
    np.savez(build_dir / "calibration.npz", **{INPUT_NAME: x_train * np.float32(RAW_MAX)})
    np.savez(build_dir / "eval.npz", **{INPUT_NAME: x_eval * np.float32(RAW_MAX), "labels": y_eval})
    (build_dir / "labels.txt").write_text("".join(f"{digit}\n" for digit in range(10)))
    return keras_path


def convert(build_dir: Path, keras_path: Path, output: Path, min_agreement: float) -> None:
    """Run the converter CLI in int8 mode; it exits non-zero (writing nothing) on failure."""
    cmd = [
        sys.executable, "-m", "convert", _shown(keras_path),
        "-o", _shown(output),
        "--mode", "int8",
        "--calibration", _shown(build_dir / "calibration.npz"),
        "--calibration-samples", "500",
        "--eval", _shown(build_dir / "eval.npz"),
        "--std", f"{RAW_MAX:g}",
        "--labels", _shown(build_dir / "labels.txt"),
        "--name", "digits_cnn",
        "--description", "Handwritten digit (0-9) from an 8x8 grey picture.",
        "--min-agreement", str(min_agreement),
        "--report", _shown(build_dir / "report.json"),
    ]  # fmt: skip
    print("+ " + " ".join(cmd), file=sys.stderr)
    result = subprocess.run(cmd, cwd=REPO, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def _shown(path: Path) -> str:
    """The path relative to the repository when inside it (the CLI runs there): short reports."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, train, convert."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=REPO / "build" / "digits")
    default_output = REPO / "model" / "quantized_model.tflite"
    parser.add_argument("-o", "--output", type=Path, default=default_output)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--min-agreement", type=float, default=0.99)
    args = parser.parse_args(argv)
    keras_path = train(args.build_dir, args.epochs)
    convert(args.build_dir, keras_path, args.output, args.min_agreement)


if __name__ == "__main__":
    main()
