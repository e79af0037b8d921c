"""serving.runtime: lazy load exactly once, no poisoned global after a failure."""

from __future__ import annotations

import shutil

import pytest

from serving.errors import ModelLoadError
from serving.runtime import Loaded, ModelState, Runtime
from serving.settings import Settings
from tests.concurrency import at_once


def runtime_for(path, **overrides) -> Runtime:
    return Runtime(Settings(model_path=str(path), **overrides))


def test_nothing_loads_before_first_use(models):
    runtime = runtime_for(models / "int8.tflite")
    assert runtime.state() == (ModelState.START, None)


def test_concurrent_first_requests_load_exactly_once(models):
    runtime = runtime_for(models / "int8.tflite", pool_size=2)
    results = at_once(12, runtime.load)
    assert len(results) == 12
    assert all(isinstance(r, Loaded) for r in results)
    assert len({id(r.model) for r in results}) == 1
    assert sum(r.load_ms is not None for r in results) == 1  # one request paid the cold load
    assert runtime.state() == (ModelState.AVAILABLE, None)


def test_warm_requests_reuse_the_model(models):
    runtime = runtime_for(models / "int8.tflite")
    first = runtime.load()
    second = runtime.load()
    assert first.load_ms is not None
    assert second.load_ms is None
    assert first.model is second.model


def test_failed_load_is_retried_by_the_next_request(models, tmp_path):
    path = tmp_path / "later.tflite"
    runtime = runtime_for(path)
    with pytest.raises(ModelLoadError, match="model file not found"):
        runtime.load()
    state, error = runtime.state()
    assert state == ModelState.FAILED
    assert "model file not found" in str(error)
    shutil.copy(models / "int8.tflite", path)
    loaded = runtime.load()
    assert loaded.load_ms is not None
    assert runtime.state() == (ModelState.AVAILABLE, None)


def test_requests_queued_behind_a_failing_load_get_its_error(models, tmp_path):
    runtime = runtime_for(tmp_path / "missing.tflite")
    errors = at_once(6, runtime.load)
    assert len(errors) == 6
    assert all(isinstance(e, ModelLoadError) for e in errors)
    assert all("model file not found" in str(e) for e in errors)


def test_bad_setting_is_a_load_failure_not_a_crash(models, monkeypatch):
    monkeypatch.setenv("MODEL_PATH", str(models / "int8.tflite"))
    monkeypatch.setenv("INTERPRETER_POOL_SIZE", "many")
    runtime = Runtime()
    with pytest.raises(Exception, match="INTERPRETER_POOL_SIZE='many' is not an integer"):
        runtime.load()
    monkeypatch.setenv("INTERPRETER_POOL_SIZE", "2")
    assert runtime.load().model is not None
