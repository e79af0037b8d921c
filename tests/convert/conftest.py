"""Small real models, trained for seconds on scikit-learn's bundled digits, and their data.

Built once per test session in a temporary directory; TensorFlow is imported only by the
fixtures that build models, so the data-loading tests never pay for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Digits:
    """8x8 digits as float32 (N, 8, 8, 1) in 0..1, split into train and held-out eval."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray


@dataclass(frozen=True)
class Built:
    """A model file (or SavedModel directory) and .npz data keyed by its input names."""

    path: Path
    calibration: Path
    eval: Path


def run_cli(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``python -m convert ARGS`` in a subprocess: exit code, stdout and stderr as text."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "convert", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def digits() -> Digits:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[..., np.newaxis]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    train, held_out = order[:1400], order[1400:]
    return Digits(x[train], y[train], x[held_out], y[held_out])


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("convert-models")


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    return keras


def _fit(model, x, y, epochs: int = 8, loss="sparse_categorical_crossentropy") -> None:
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)


def save_keras(model, path: Path) -> None:
    """``model.save(path)`` without the warnings Keras raises about itself."""
    with warnings.catch_warnings():
        # Keras 3.15 itself trips numpy 2's __array__(copy=...) deprecation while saving.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"keras\.")
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy", category=UserWarning)
        model.save(path)


@pytest.fixture(scope="session")
def functional(model_dir: Path, digits: Digits) -> Built:
    """Functional CNN: ``pixels`` (8, 8, 1) -> ``digit`` (10 probabilities), ``.keras``."""
    keras = _keras()
    inputs = keras.Input((8, 8, 1), name="pixels")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="digit")(x)
    model = keras.Model(inputs, outputs)
    _fit(model, digits.x_train, digits.y_train)
    path = model_dir / "functional.keras"
    save_keras(model, path)
    return _with_data(path, {"pixels": digits.x_train}, {"pixels": digits.x_eval}, digits.y_eval)


@pytest.fixture(scope="session")
def sequential(model_dir: Path, digits: Digits) -> Built:
    """Sequential MLP: ``features`` (64,) -> ``digit``, saved as legacy ``.h5``."""
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((64,), name="features"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax", name="digit"),
        ]
    )
    x_train = digits.x_train.reshape(-1, 64)
    _fit(model, x_train, digits.y_train)
    path = model_dir / "sequential.h5"
    save_keras(model, path)
    x_eval = digits.x_eval.reshape(-1, 64)
    return _with_data(path, {"features": x_train}, {"features": x_eval}, digits.y_eval)


@pytest.fixture(scope="session")
def two_io(model_dir: Path, digits: Digits) -> Built:
    """Inputs ``image`` (8, 8, 1) and ``extra`` (3,); outputs ``digit`` (10) and ``ink`` (1).

    ``ink`` regresses the mean pixel plus a tenth of the sum of ``extra``.
    """
    keras = _keras()
    image = keras.Input((8, 8, 1), name="image")
    extra = keras.Input((3,), name="extra")
    h = keras.layers.Flatten()(image)
    h = keras.layers.Concatenate()([h, extra])
    h = keras.layers.Dense(32, activation="relu")(h)
    digit = keras.layers.Dense(10, activation="softmax", name="digit")(h)
    ink = keras.layers.Dense(1, name="ink")(h)
    model = keras.Model([image, extra], [digit, ink])
    rng = np.random.default_rng(1)
    extra_train = rng.random((len(digits.x_train), 3), dtype=np.float32)
    extra_eval = rng.random((len(digits.x_eval), 3), dtype=np.float32)
    losses = {"digit": "sparse_categorical_crossentropy", "ink": "mse"}
    ink_train = digits.x_train.mean(axis=(1, 2, 3)) + extra_train.sum(axis=1) / 10
    _fit(
        model,
        [digits.x_train, extra_train],
        {"digit": digits.y_train, "ink": ink_train},
        15,
        losses,
    )
    path = model_dir / "two_io.keras"
    save_keras(model, path)
    return _with_data(
        path,
        {"image": digits.x_train, "extra": extra_train},
        {"image": digits.x_eval, "extra": extra_eval},
        digits.y_eval,
    )


@pytest.fixture(scope="session")
def saved_model(model_dir: Path, digits: Digits) -> Built:
    """A plain ``tf.Module`` SavedModel (no Keras) with signatures ``classify`` and ``logits``.

    The weights are a logistic regression fitted by scikit-learn on the flattened digits.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from sklearn.linear_model import LogisticRegression

    x_train = digits.x_train.reshape(-1, 64)
    fitted = LogisticRegression(max_iter=300).fit(x_train, digits.y_train)

    class Linear(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(fitted.coef_.T.astype(np.float32))
            self.b = tf.Variable(fitted.intercept_.astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="features")])
        def classify(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"probabilities": tf.nn.softmax(features @ self.w + self.b)}

        @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32, name="features")])
        def logits(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"logits": features @ self.w + self.b}

    module = Linear()
    path = model_dir / "linear_saved_model"
    tf.saved_model.save(
        module, str(path), signatures={"classify": module.classify, "logits": module.logits}
    )
    x_eval = digits.x_eval.reshape(-1, 64)
    return _with_data(path, {"features": x_train}, {"features": x_eval}, digits.y_eval)


def _logistic(digits: Digits):
    """(weights (64, 10), bias (10,)) of a logistic regression on the flattened digits."""
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(max_iter=300).fit(digits.x_train.reshape(-1, 64), digits.y_train)
    return fitted.coef_.T.astype(np.float32), fitted.intercept_.astype(np.float32)


def _flat_data(path: Path, digits: Digits) -> Built:
    x_train, x_eval = digits.x_train.reshape(-1, 64), digits.x_eval.reshape(-1, 64)
    return _with_data(path, {"features": x_train}, {"features": x_eval}, digits.y_eval)


@pytest.fixture(scope="session")
def keras_tf_saved(model_dir: Path, functional: Built) -> Built:
    """The functional CNN written by ``tf.saved_model.save`` (Keras 3): input ``inputs``."""
    keras = _keras()
    import tensorflow as tf

    path = model_dir / "keras_tf_saved"
    tf.saved_model.save(keras.models.load_model(functional.path), str(path))
    cal, ev = np.load(functional.calibration), np.load(functional.eval)
    return _with_data(path, {"inputs": cal["pixels"]}, {"inputs": ev["pixels"]}, ev["labels"])


@pytest.fixture(scope="session")
def keras_export(model_dir: Path, functional: Built) -> Built:
    """The functional CNN written by ``model.export()`` (signatures serve, serving_default)."""
    keras = _keras()
    path = model_dir / "keras_export"
    keras.models.load_model(functional.path).export(str(path), verbose=False)
    cal, ev = np.load(functional.calibration), np.load(functional.eval)
    return _with_data(path, {"pixels": cal["pixels"]}, {"pixels": ev["pixels"]}, ev["labels"])


@pytest.fixture(scope="session")
def module_without_signatures(model_dir: Path, digits: Digits) -> Built:
    """A ``tf.Module`` with variables whose only entry point is a traced ``__call__``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    w, b = _logistic(digits)

    class Hub(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w, self.b = tf.Variable(w), tf.Variable(b)

        @tf.function
        def __call__(self, features: tf.Tensor) -> tf.Tensor:
            return tf.nn.softmax(features @ self.w + self.b)

    module = Hub()
    module.__call__.get_concrete_function(tf.TensorSpec([None, 64], tf.float32, name="features"))
    path = model_dir / "hub_module"
    tf.saved_model.save(module, str(path))
    return _flat_data(path, digits)


@pytest.fixture(scope="session")
def tf1_saved_model(model_dir: Path, digits: Digits) -> Built:
    """A TF1 SavedModel (``SavedModelBuilder``): ``features`` -> ``probabilities``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    w, b = _logistic(digits)
    path = model_dir / "tf1_saved_model"
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        features = v1.placeholder(tf.float32, [None, 64], name="features")
        weights = v1.get_variable("w", initializer=w)
        bias = v1.get_variable("b", initializer=b)
        probabilities = tf.nn.softmax(tf.matmul(features, weights) + bias, name="probabilities")
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(path))
        signature = v1.saved_model.predict_signature_def(
            {"features": features}, {"probabilities": probabilities}
        )
        builder.add_meta_graph_and_variables(
            session, [tf.saved_model.SERVING], signature_def_map={"serving_default": signature}
        )
        builder.save()
    return _flat_data(path, digits)


def _with_data(
    path: Path,
    calibration: dict[str, np.ndarray],
    evaluation: dict[str, np.ndarray],
    labels: np.ndarray,
) -> Built:
    stem = path.name.split(".")[0]
    calibration_path = path.with_name(f"{stem}-calibration.npz")
    eval_path = path.with_name(f"{stem}-eval.npz")
    np.savez(calibration_path, **calibration)
    np.savez(eval_path, **evaluation, labels=labels)
    return Built(path, calibration_path, eval_path)
