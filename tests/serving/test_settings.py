"""serving.settings: one frozen object read from the environment."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest

from serving.memory import MIN_REQUEST_BUDGET, ModelFootprint
from serving.settings import BUNDLED_MODEL, SINGLE_MODEL_ONLY, ConfigError, Settings

VARIABLES = [
    "MODEL_PATH",
    "MODEL_NAME",
    "MODEL_VERSION",
    "INTERPRETER_POOL_SIZE",
    "INTERPRETER_THREADS",
    "SERVING_BACKEND",
    "MAX_REQUEST_BYTES",
    "MAX_BATCH_SIZE",
    "GCS_TIMEOUT_SECONDS",
    "MODEL_CACHE_DIR",
    "LOG_LEVEL",
    "BODY_TIMEOUT_SECONDS",
    "MEMORY_LIMIT_BYTES",
    "WORKERS",
    "REQUEST_MEMORY_BUDGET_BYTES",
    "ADMISSION_TIMEOUT_SECONDS",
    "GOOGLE_CLOUD_PROJECT",
    "GCE_METADATA_HOST",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_serve_the_bundled_model():
    settings = Settings.from_env()
    assert settings.model_path == str(BUNDLED_MODEL)
    assert Path(settings.model_path).is_file()
    assert (settings.model_name, settings.model_version) == ("model", "1")
    assert settings.pool_size >= 1
    assert settings.num_threads == 1
    assert settings.backend is None
    assert settings.engine is None  # chosen per model
    assert settings.weight_cache_dir == Path(tempfile.gettempdir()) / "tflite-weight-cache"
    assert settings.max_request_bytes == 10 * 1024 * 1024
    assert settings.project_id is None
    assert settings.metadata_host == "metadata.google.internal"


def test_reads_every_variable(monkeypatch, tmp_path):
    values = {
        "MODEL_PATH": "gs://bucket/m.tflite",
        "MODEL_NAME": "digits",
        "MODEL_VERSION": "7",
        "INTERPRETER_POOL_SIZE": "3",
        "INTERPRETER_THREADS": "2",
        "SERVING_BACKEND": "tflite_runtime",
        "SERVING_ENGINE": "interpreter",
        "WEIGHT_CACHE_DIR": str(tmp_path / "weights"),
        "MAX_REQUEST_BYTES": "1000",
        "MAX_BATCH_SIZE": "8",
        "GCS_TIMEOUT_SECONDS": "2.5",
        "MODEL_CACHE_DIR": str(tmp_path),
        "LOG_LEVEL": "warning",
        "BODY_TIMEOUT_SECONDS": "3.5",
        "MEMORY_LIMIT_BYTES": "536870912",
        "WORKERS": "2",
        "REQUEST_MEMORY_BUDGET_BYTES": "1000000",
        "ADMISSION_TIMEOUT_SECONDS": "0.5",
        "GOOGLE_CLOUD_PROJECT": "demo-project",
        "GCE_METADATA_HOST": "127.0.0.1:8111",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings == Settings(
        model_path="gs://bucket/m.tflite",
        model_name="digits",
        model_version="7",
        pool_size=3,
        num_threads=2,
        backend="tflite_runtime",
        engine="interpreter",
        weight_cache_dir=tmp_path / "weights",
        max_request_bytes=1000,
        max_batch_size=8,
        gcs_timeout=2.5,
        cache_dir=tmp_path,
        log_level="WARNING",
        body_timeout=3.5,
        memory_limit=536870912,
        workers=2,
        request_memory_budget=1000000,
        admission_timeout=0.5,
        project_id="demo-project",
        metadata_host="127.0.0.1:8111",
    )
    assert settings.request_budget() == 1000000


def test_the_memory_budget_is_a_share_of_the_instance_memory(monkeypatch):
    monkeypatch.setenv("MEMORY_LIMIT_BYTES", str(512 * 2**20))
    assert Settings.from_env().request_budget() == int(512 * 2**20 * 0.45)
    monkeypatch.setenv("WORKERS", "2")
    assert Settings.from_env().request_budget() == int(512 * 2**20 * 0.45) // 2


def test_the_budget_is_what_the_model_leaves(monkeypatch):
    monkeypatch.setenv("MEMORY_LIMIT_BYTES", str(2**30))
    monkeypatch.setenv("WORKERS", "2")
    settings = Settings.from_env()
    footprint = ModelFootprint(engine_bytes=2**20, engines_per_process=1, shared_bytes=2**28)
    assert settings.request_budget(footprint) == int((2**30 - 2**28 - 2 * 2**20) * 0.45) // 2
    # However little is left, a worker still admits small requests.
    huge = ModelFootprint(engine_bytes=0, engines_per_process=1, shared_bytes=2**31)
    assert settings.request_budget(huge) == MIN_REQUEST_BUDGET


def test_the_instance_memory_defaults_to_what_the_machine_says():
    settings = Settings.from_env()
    assert settings.memory_limit > 0  # a cgroup limit or /proc/meminfo on Linux
    assert settings.request_budget() == int(settings.memory_limit * 0.45)


def test_is_frozen():
    settings = Settings.from_env()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.model_name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INTERPRETER_POOL_SIZE", "two", "INTERPRETER_POOL_SIZE='two' is not an integer"),
        ("INTERPRETER_POOL_SIZE", "0", "INTERPRETER_POOL_SIZE='0' must be at least 1"),
        ("MAX_REQUEST_BYTES", "-5", "MAX_REQUEST_BYTES='-5' must be at least 1"),
        ("GCS_TIMEOUT_SECONDS", "soon", "GCS_TIMEOUT_SECONDS='soon' is not a number"),
        ("GCS_TIMEOUT_SECONDS", "0", "GCS_TIMEOUT_SECONDS='0' must be greater than 0"),
        ("SERVING_BACKEND", "onnx", "SERVING_BACKEND='onnx' is not one of litert"),
        ("SERVING_ENGINE", "gpu", "SERVING_ENGINE='gpu' is not one of compiled, interpreter"),
        ("MODEL_NAME", "a/b", "MODEL_NAME='a/b' must be letters, digits, '.', '_' or '-'"),
        ("MODEL_VERSION", "1:2", "MODEL_VERSION='1:2' must be letters"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='LOUD' is not DEBUG, INFO, WARNING or ERROR"),
        ("BODY_TIMEOUT_SECONDS", "-1", "BODY_TIMEOUT_SECONDS='-1' must be greater than 0"),
        ("MEMORY_LIMIT_BYTES", "512Mi", "MEMORY_LIMIT_BYTES='512Mi' is not an integer"),
        ("WORKERS", "0", "WORKERS='0' must be at least 1"),
        ("ADMISSION_TIMEOUT_SECONDS", "x", "ADMISSION_TIMEOUT_SECONDS='x' is not a number"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    assert str(caught.value).startswith(message)
    assert caught.value.status_code == 500


def test_picture_and_label_settings(monkeypatch):
    for name in ("LABELS_PATH", "IMAGE_MEAN", "IMAGE_STD", "MAX_IMAGE_PIXELS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert (settings.labels_path, settings.image_mean, settings.image_std) == (None, None, None)
    assert settings.max_image_pixels == 4096 * 4096
    settings = Settings.from_env(
        {
            "LABELS_PATH": "gs://b/labels.txt",
            "IMAGE_MEAN": "123.7, 116.3,103.5",
            "IMAGE_STD": "58.4",
            "MAX_IMAGE_PIXELS": "1000",
        }
    )
    assert settings.labels_path == "gs://b/labels.txt"
    assert settings.image_mean == (123.7, 116.3, 103.5)
    assert settings.image_std == (58.4,)
    assert settings.max_image_pixels == 1000


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IMAGE_MEAN", "a,b", "IMAGE_MEAN='a,b' is not a number or comma-separated numbers"),
        ("IMAGE_MEAN", "nan", "IMAGE_MEAN='nan': every value must be finite"),
        ("IMAGE_STD", "1,0,1", "IMAGE_STD='1,0,1': every value must be finite and non-zero"),
        ("MAX_IMAGE_PIXELS", "0", "MAX_IMAGE_PIXELS='0' must be at least 1"),
    ],
)
def test_bad_picture_settings_name_the_variable(name, value, message):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert str(raised.value) == message


def test_repository_settings(monkeypatch):
    for name in ("MODEL_PATH", "MODEL_REPOSITORY", "MODEL_REPOSITORY_POLL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    single = Settings.from_env()
    assert (single.model_repository, single.repository_poll) == (None, 0.0)
    assert single.model_path == str(BUNDLED_MODEL)  # single-model mode stays the default
    monkeypatch.setenv("MODEL_REPOSITORY", "gs://bucket/models")
    monkeypatch.setenv("MODEL_REPOSITORY_POLL_SECONDS", "30")
    settings = Settings.from_env()
    assert (settings.model_repository, settings.repository_poll) == ("gs://bucket/models", 30.0)
    monkeypatch.setenv("MODEL_REPOSITORY_POLL_SECONDS", "0")
    assert Settings.from_env().repository_poll == 0.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "MODEL_REPOSITORY_POLL_SECONDS='soon' is not a number"),
        (
            "-1",
            "MODEL_REPOSITORY_POLL_SECONDS='-1' must be 0 (off) or a positive number of seconds",
        ),
        (
            "inf",
            "MODEL_REPOSITORY_POLL_SECONDS='inf' must be 0 (off) or a positive number of seconds",
        ),
    ],
)
def test_bad_poll_interval(monkeypatch, value, message):
    monkeypatch.setenv("MODEL_REPOSITORY", "repo")
    monkeypatch.setenv("MODEL_REPOSITORY_POLL_SECONDS", value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODEL_PATH", "model.tflite"),
        ("MODEL_NAME", "digits"),
        ("MODEL_VERSION", "2"),
        ("LABELS_PATH", "labels.txt"),
        ("IMAGE_MEAN", "127.5"),
        ("IMAGE_STD", "2"),
    ],
)
def test_a_repository_excludes_the_single_model_settings(monkeypatch, name, value):
    for other in SINGLE_MODEL_ONLY:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv("MODEL_REPOSITORY", "gs://bucket/models")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env()
    assert str(caught.value) == (
        f"MODEL_REPOSITORY='gs://bucket/models' and {name}={value!r} are both set: {name} is "
        "for single-model mode; set one or the other"
    )


def test_a_repository_sets_its_request_budget_aside_from_the_models(monkeypatch):
    monkeypatch.delenv("MODEL_PATH", raising=False)
    monkeypatch.setenv("MODEL_REPOSITORY", "models/")
    monkeypatch.setenv("MEMORY_LIMIT_BYTES", str(2**30))
    monkeypatch.setenv("MAX_REQUEST_BYTES", str(2**20))
    settings = Settings.from_env()
    shares = settings.repository_shares()
    assert settings.request_budget() == shares.requests == 20 * 2**20  # one JSON request
    # A model's footprint does not change it: the models have their own share.
    footprint = ModelFootprint(engine_bytes=2**20, engines_per_process=1, shared_bytes=2**28)
    assert settings.request_budget(footprint) == shares.requests
    monkeypatch.setenv("REQUEST_MEMORY_BUDGET_BYTES", str(5 * 2**20))
    given = Settings.from_env()
    assert given.request_budget() == 5 * 2**20
    assert given.repository_shares().models == shares.models + 15 * 2**20
