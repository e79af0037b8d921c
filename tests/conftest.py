"""Suite-wide fixtures: real TFLite models built by TensorFlow in a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.errors import ModelLoadError
from serving.model import Model

pytest_plugins = ["tests.gcs_emulator"]

# Nothing in the tests may reach a real metadata server (the project id of log lines' trace
# field, serving/trace.py): by default it is a loopback port nothing listens on.
os.environ.setdefault("GCE_METADATA_HOST", "127.0.0.1:1")

REPO = Path(__file__).resolve().parent.parent
# The shipped example, which users are told to replace with their own model: only tests of
# "whatever file is there" read it. Tests that need the digits model's inputs, labels or
# answers use the ``digits_model`` fixture, built the way ``make model`` builds this file.
BUNDLED_MODEL = REPO / "model" / "quantized_model.tflite"


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of small real models (see tests/model_factory.py for what each is).

    Built by ``MODEL_BUILDER_PYTHON`` (default: this interpreter), which must have
    TensorFlow: the legacy run has none and borrows the dev environment's.
    """
    return _built(tmp_path_factory.mktemp("models"), "model_factory.py")


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits classifier, trained and converted as ``make model`` builds the bundled
    ``model/quantized_model.tflite`` (fixed seed, int8, labels ``0``..``9`` and the
    normalisation in its metadata), but into a temporary folder: the tests of its inputs,
    labels and answers pass whatever model a user put in ``model/``."""
    out = tmp_path_factory.mktemp("digits")
    model = out / "quantized_model.tflite"
    _built(out, REPO / "model" / "train_digits.py", "--build-dir", str(out), "--output", str(model))
    return model


def _built(out: Path, script: str | Path, *args: str) -> Path:
    """``out`` after ``tests/<script> out`` (or ``script args``: an absolute ``script`` is
    used as is) ran in the model builder's Python (TensorFlow)."""
    python = os.environ.get("MODEL_BUILDER_PYTHON", sys.executable)
    # The builder's converter checks its models in the builder's own runtime, whatever
    # backend the tests are run on (the legacy run's tflite-runtime is not there).
    env = {k: v for k, v in os.environ.items() if k != "SERVING_BACKEND"}
    result = subprocess.run(
        [python, str(REPO / "tests" / script), *(args or [str(out)])],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{result.stdout}\n{result.stderr}")
    return out


def load_or_skip(path: Path, **options: object) -> Model:
    """Load ``path``; skip the test (saying why) when the installed runtime is too old for it.

    That happens under the legacy tflite-runtime backend with models whose op versions
    are newer than it knows: such tests are reported as skipped, never silently passed.
    """
    try:
        return Model.load(path, backend=os.environ.get("SERVING_BACKEND"), **options)
    except ModelLoadError as e:
        if e.reason == "op_version":
            pytest.skip(f"needs a newer runtime than the installed one: {e}")
        raise


@pytest.fixture(scope="session")
def engine_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models for the engine tests (see tests/engine_models.py): ``mlp.tflite`` (16.9 MB
    float32), ``mlp_int8.tflite``, ``int64_input.tflite`` and ``nonzero.tflite``."""
    return _built(tmp_path_factory.mktemp("engine-models"), "engine_models.py")


@pytest.fixture(scope="session")
def picture_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RGB picture classifiers with TFLite metadata, made by the converter CLI (see
    tests/picture_models.py): ``float32.tflite``, ``int8.tflite`` and ``labels.txt``."""
    return _built(tmp_path_factory.mktemp("picture-models"), "picture_models.py")


@pytest.fixture(scope="session")
def repository_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mlp_0.tflite`` .. ``mlp_3.tflite``: distinct 6.3 MB float32 models (see
    tests/repository_models.py), for the repository's memory tests and benchmarks."""
    return _built(tmp_path_factory.mktemp("repository-models"), "repository_models.py")
