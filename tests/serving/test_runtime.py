"""serving.runtime: lazy load exactly once, no poisoned global after a failure."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from serving.errors import ModelLoadError
from serving.model import select_backend
from serving.model.weight_cache import CacheState
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


def load_lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]


def test_the_load_line_states_the_engine_and_the_footprint(models, tmp_path, capsys):
    runtime = runtime_for(
        models / "int8.tflite", memory_limit=512 * 2**20, pool_size=3, weight_cache_dir=tmp_path
    )
    model = runtime.load().model
    (line,) = [e for e in load_lines(capsys) if e["message"] == "model loaded"]
    assert line["engine"] == "interpreter"
    assert line["engine_reason"] == model.choice.reason
    assert line["pool_size"] == 3
    assert line["footprint"] == {
        "engine_bytes": model.footprint.engine_bytes,
        "engines_per_process": 3,
        "shared_bytes": 0,
        "instance_bytes": 3 * model.footprint.engine_bytes,
    }
    assert "weight_cache" not in line  # interpreters pack privately: no cache to speak of
    # Requests are admitted against what the model leaves of the instance's memory.
    expected = int((512 * 2**20 - 3 * model.footprint.engine_bytes) * 0.45)
    assert runtime.budget.capacity == expected == line["request_budget_bytes"]


@pytest.mark.skipif(
    select_backend(os.environ.get("SERVING_BACKEND")).compiled is None,
    reason="the backend has no CompiledModel",
)
def test_a_compiled_engine_counts_its_packed_file_once_per_instance(
    engine_models, tmp_path, capsys
):
    runtime = runtime_for(
        engine_models / "mlp.tflite", memory_limit=2**30, workers=2, weight_cache_dir=tmp_path
    )
    model = runtime.load().model
    (line,) = [e for e in load_lines(capsys) if e["message"] == "model loaded"]
    assert line["engine"] == "compiled"
    assert line["weight_cache"] == {
        "state": "packed",
        "bytes": model.weight_cache.bytes,
        "path": str(model.weight_cache.path),
    }
    footprint = line["footprint"]
    assert footprint["shared_bytes"] == model.weight_cache.bytes
    assert footprint["instance_bytes"] == model.weight_cache.bytes + 2 * footprint["engine_bytes"]
    assert runtime.budget.capacity == int((2**30 - footprint["instance_bytes"]) * 0.45) // 2


@pytest.mark.skipif(
    select_backend(os.environ.get("SERVING_BACKEND")).compiled is None,
    reason="the backend has no CompiledModel",
)
def test_an_unusable_weight_cache_is_one_warning_and_the_model_serves(
    engine_models, tmp_path, capsys
):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    runtime = runtime_for(engine_models / "mlp.tflite", weight_cache_dir=blocker / "cache")
    model = runtime.load().model
    lines = load_lines(capsys)
    warnings = [e for e in lines if e["severity"] == "WARNING"]
    assert [e["message"] for e in warnings] == [
        f"weight cache not used, weights packed in process memory: {model.weight_cache.reason}"
    ]
    assert warnings[0]["weight_cache_dir"] == str(blocker / "cache")
    (loaded,) = [e for e in lines if e["message"] == "model loaded"]
    assert loaded["weight_cache"]["state"] == "private"
    assert model.predict({"features": np.zeros((1, 2048), np.float32)})["output_0"].shape == (1, 16)


@pytest.mark.skipif(
    select_backend(os.environ.get("SERVING_BACKEND")).compiled is None,
    reason="the backend has no CompiledModel",
)
def test_a_gs_model_costs_one_copy_on_disk_and_none_in_the_heap(
    engine_models, storage_emulator, tmp_path, monkeypatch, capsys
):
    path = engine_models / "mlp.tflite"
    storage_emulator.upload("models", "mlp.tflite", path.read_bytes())
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_emulator.host)
    cache_dir = tmp_path / "models"
    settings = {"cache_dir": cache_dir, "weight_cache_dir": tmp_path / "weights"}
    runtime_for("gs://models/mlp.tflite", **settings).load()  # the instance's first worker
    capsys.readouterr()
    # Another worker: the verified download and the packed weights are reused, not copied.
    model = runtime_for("gs://models/mlp.tflite", **settings).load().model
    (downloaded,) = [p for p in cache_dir.rglob("*") if p.is_file()]
    assert downloaded.read_bytes() == path.read_bytes()
    # The verified download is the file the engine maps: no second copy, none in the heap.
    maps = Path("/proc/self/maps").read_text()
    assert str(downloaded) in maps
    assert model.weight_cache.state is CacheState.MAPPED
    assert model.footprint.engine_bytes < path.stat().st_size / 10
    (line,) = [e for e in load_lines(capsys) if e["message"] == "model loaded"]
    assert line["downloaded"] is False
    assert line["footprint"]["shared_bytes"] == model.weight_cache.bytes + path.stat().st_size


def test_a_repository_is_served_in_place_of_the_single_model(models, tmp_path):
    version = tmp_path / "repository" / "digits" / "3" / "model.tflite"
    version.parent.mkdir(parents=True)
    version.write_bytes((models / "int8.tflite").read_bytes())
    runtime = Runtime(Settings(model_path="", model_repository=str(version.parents[2])))
    repository = runtime.repository
    assert repository is not None
    assert runtime.repository is repository  # one per process
    assert [(s.name, s.version, s.state.value) for s in repository.status()] == [
        ("digits", 3, "START")  # made and listed, nothing loaded
    ]
    with pytest.raises(RuntimeError, match=r"use \.repository"):
        runtime.load()  # never the single model in the repository's place
    assert Runtime(Settings(model_path=str(models / "int8.tflite"))).repository is None
