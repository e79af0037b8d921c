"""serving.model engines: each answers as a bare interpreter does; which one serves which model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from serving.errors import LoadFailure, ModelLoadError
from serving.memory import SHARED_WEIGHTS_MIN_BYTES
from serving.model import Model, select_backend
from serving.model.engine import EngineKind
from serving.model.tensors import Signature
from serving.model.weight_cache import CacheState
from tests.concurrency import at_once
from tests.conftest import REPO

BACKEND = os.environ.get("SERVING_BACKEND")
HAS_COMPILED = select_backend(BACKEND).compiled is not None
needs_compiled = pytest.mark.skipif(
    not HAS_COMPILED, reason=f"the {select_backend(BACKEND).label} backend has no CompiledModel"
)
RNG = np.random.default_rng(3)

# (fixture, file): every kind of model the suite builds (a file of a folder fixture, or None
# for a fixture that is the model itself).
MODELS = [
    ("models", "float32.tflite"),
    ("models", "int8.tflite"),
    ("models", "multi.tflite"),
    ("models", "two_signatures.tflite"),
    ("models", "no_signature.tflite"),
    ("models", "fixed_batch.tflite"),
    ("models", "dynamic.tflite"),
    ("picture_models", "float32.tflite"),
    ("picture_models", "int8.tflite"),
    ("engine_models", "mlp.tflite"),
    ("engine_models", "mlp_int8.tflite"),
    ("digits_model", None),
]


def model_path(request: pytest.FixtureRequest, where: str, name: str | None) -> Path:
    found = request.getfixturevalue(where)
    return found if name is None else found / name


def load(path: Path, engine: str | None, cache: Path, **options: object) -> Model:
    try:
        return Model.load(path, backend=BACKEND, engine=engine, weight_cache_dir=cache, **options)
    except ModelLoadError as e:
        if e.reason == "op_version":
            pytest.skip(f"needs a newer runtime than the installed one: {e}")
        raise


def feeds_for(signature: Signature, batch: int) -> dict[str, np.ndarray]:
    """Real values for every input: ``batch`` rows, 5 along any other dynamic dimension."""
    feeds = {}
    for spec in signature.inputs:
        rows = batch if spec.batch_dynamic or spec.shape[:1] == (1,) else spec.shape[0]
        shape = [rows] + [5 if d == -1 else d for d in spec.shape[1:]]
        feeds[spec.name] = RNG.random(shape, dtype=np.float32)
    return feeds


def bare(path: Path, signature: Signature, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of a plain interpreter of the backend, row by row, with its own arithmetic."""
    rows = next(iter(feeds.values())).shape[0]
    parts = [
        _bare_rows(path, signature, {k: v[i : i + 1] for k, v in feeds.items()})
        for i in range(rows)
    ]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _bare_rows(path: Path, signature: Signature, feeds: dict[str, np.ndarray]) -> dict:
    interpreter = select_backend(BACKEND).make_interpreter(str(path), num_threads=1)
    codes = {}
    for spec in signature.inputs:
        value = feeds[spec.name]
        if spec.quantized:
            info = np.iinfo(spec.dtype)
            q = np.round(value.astype(np.float64) / spec.scale) + spec.zero_point
            codes[spec.name] = np.clip(q, info.min, info.max).astype(spec.dtype)
        else:
            codes[spec.name] = value.astype(spec.dtype)
    if interpreter.get_signature_list():
        raw = interpreter.get_signature_runner(signature.key)(**codes)
    else:  # no signature defs: the main subgraph, by tensor index
        for spec in signature.inputs:
            interpreter.resize_tensor_input(spec.index, list(codes[spec.name].shape))
        interpreter.allocate_tensors()
        for spec in signature.inputs:
            interpreter.set_tensor(spec.index, codes[spec.name])
        interpreter.invoke()
        raw = {spec.name: interpreter.get_tensor(spec.index) for spec in signature.outputs}
    out = {}
    for spec in signature.outputs:
        value = raw[spec.name]
        out[spec.name] = (
            (value.astype(np.float64) - spec.zero_point) * spec.scale if spec.quantized else value
        )
    return out


@pytest.mark.parametrize("engine", ["compiled", "interpreter"])
@pytest.mark.parametrize(("where", "name"), MODELS)
def test_every_engine_answers_as_a_bare_interpreter(request, tmp_path, engine, where, name):
    if engine == "compiled" and not HAS_COMPILED:
        pytest.skip("no CompiledModel in this backend")
    path = model_path(request, where, name)
    with load(path, engine, tmp_path) as model:
        assert model.engine.kind is EngineKind(engine)
        for signature in model.signatures:
            for batch in (1, 3, 2):  # a new batch, then back to a smaller one
                feeds = feeds_for(signature, batch)
                got = model.predict(feeds, signature.key)
                want = bare(path, signature, feeds)
                assert set(got) == set(want)
                for output, value in want.items():
                    assert got[output].shape == value.shape, (signature.key, output, batch)
                    np.testing.assert_allclose(got[output], value, rtol=1e-5, atol=1e-6)


def test_small_models_stay_on_the_interpreter_pool(digits_model, tmp_path):
    with load(digits_model, None, tmp_path) as model:
        assert model.engine.kind is EngineKind.INTERPRETER
        assert model.choice.reason == (
            f"model of {digits_model.stat().st_size} bytes, under {SHARED_WEIGHTS_MIN_BYTES}: "
            "copies of its weights cost less than the compiled engine's runtime"
        )
        assert model.weight_cache is None
        assert not any(tmp_path.iterdir())  # nothing packed, nothing written


@needs_compiled
def test_real_size_models_get_one_shared_copy(engine_models, tmp_path):
    with load(engine_models / "mlp.tflite", None, tmp_path, pool_size=4) as model:
        assert model.engine.kind is EngineKind.COMPILED
        assert model.choice.reason == "one shared copy of the weights"
        assert model.engine.size == 1  # it holds the GIL: one runner per process
        assert model.weight_cache is not None
        assert model.weight_cache.state is CacheState.PACKED
        size = (engine_models / "mlp.tflite").stat().st_size
        assert 0.9 * size < model.weight_cache.bytes < 1.1 * size
        assert model.footprint.shared_bytes == model.weight_cache.bytes


@pytest.mark.skipif(HAS_COMPILED, reason="the backend has a CompiledModel")
def test_forcing_the_compiled_engine_without_litert_says_so(engine_models, tmp_path):
    with pytest.raises(ModelLoadError) as caught:
        load(engine_models / "mlp.tflite", "compiled", tmp_path)
    assert caught.value.reason is LoadFailure.ENGINE
    assert str(caught.value) == (
        "SERVING_ENGINE=compiled cannot serve this model: the backend has no LiteRT "
        "CompiledModel (ai-edge-litert); unset SERVING_ENGINE or set it to interpreter"
    )


@needs_compiled
@pytest.mark.parametrize(
    ("name", "why"),
    [
        (
            "int64_input.tflite",
            "tensor 'ids' of signature 'serving_default' is int64, which LiteRT's TensorBuffer "
            "cannot hold",
        ),
        (
            "nonzero.tflite",
            "output 'where' of signature 'serving_default' is [0, 2] for a batch of 2, not [2, 2]",
        ),
    ],
)
def test_models_the_compiled_engine_cannot_serve(engine_models, tmp_path, name, why):
    path = engine_models / name
    with load(path, None, tmp_path) as model:  # chosen per model: the interpreter, and why
        assert model.engine.kind is EngineKind.INTERPRETER
        if path.stat().st_size >= SHARED_WEIGHTS_MIN_BYTES:
            assert model.choice.reason == why
        spec = model.inputs[0]
        feeds = {spec.name: np.arange(2 * spec.shape[1]).reshape(2, -1).astype(spec.dtype) - 2}
        want = _bare_rows(path, model.default, feeds)  # the whole batch at once
        got = model.predict(feeds)
        for output, value in want.items():
            np.testing.assert_allclose(got[output], value, rtol=1e-5)
    with pytest.raises(ModelLoadError) as caught:  # forced: refused, never silently swapped
        load(path, "compiled", tmp_path)
    assert caught.value.reason is LoadFailure.ENGINE
    assert str(caught.value) == (
        f"SERVING_ENGINE=compiled cannot serve this model: {why}; "
        "unset SERVING_ENGINE or set it to interpreter"
    )


def test_the_interpreter_engine_can_be_forced_on_any_model(engine_models, tmp_path):
    with load(engine_models / "mlp.tflite", "interpreter", tmp_path, pool_size=2) as model:
        assert model.engine.kind is EngineKind.INTERPRETER
        assert model.choice.reason == "SERVING_ENGINE=interpreter"
        assert (model.engine.size, model.runners) == (2, 1)
        assert model.weight_cache is None


@needs_compiled
def test_threads_share_the_compiled_engine_and_each_get_their_answer(engine_models, tmp_path):
    path = engine_models / "mlp_int8.tflite"
    inputs = iter(RNG.standard_normal((1 + i % 3, 2048)).astype(np.float32) for i in range(12))
    pending = threading.Lock()
    with load(path, "compiled", tmp_path) as model:

        def call() -> tuple[np.ndarray, np.ndarray]:
            with pending:
                x = next(inputs)
            return x, model.predict({"features": x})["output_0"]

        results = at_once(12, call)
        assert model.runners == 1
        for x, got in results:
            want = bare(path, model.default, {"features": x})["output_0"]
            np.testing.assert_allclose(got, want, atol=1e-6)


@needs_compiled
def test_a_second_model_of_the_file_maps_the_packed_weights(engine_models, tmp_path):
    path = engine_models / "mlp.tflite"
    with load(path, None, tmp_path) as first, load(path, None, tmp_path) as second:
        assert first.weight_cache.state is CacheState.PACKED
        assert second.weight_cache.state is CacheState.MAPPED
        assert second.weight_cache.path == first.weight_cache.path
        # A mapped engine adds far less than a copy of the weights (16.9 MB) to the heap.
        assert second.footprint.engine_bytes < path.stat().st_size / 10
        x = RNG.standard_normal((2, 2048)).astype(np.float32)
        np.testing.assert_array_equal(first.predict({"features": x})["output_0"],
                                      second.predict({"features": x})["output_0"])  # fmt: skip


# One worker's cold start: load, report what the cache did, predict.
WORKER = """
import json, sys
import numpy as np
from serving.model import Model
model = Model.load(sys.argv[1], weight_cache_dir=sys.argv[2])
x = np.linspace(-1, 1, 2 * 2048, dtype=np.float32).reshape(2, 2048)
out = model.predict({"features": x})["output_0"]
print(json.dumps({
    "engine": model.engine.kind.value,
    "state": model.weight_cache.state.value,
    "path": str(model.weight_cache.path),
    "engine_bytes": model.footprint.engine_bytes,
    "out": out.tolist(),
}))
"""


@needs_compiled
def test_two_workers_cold_starting_together_pack_once(engine_models, tmp_path):
    path = engine_models / "mlp.tflite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["state"] for r in reports) == ["mapped", "packed"]
    assert reports[0]["path"] == reports[1]["path"]
    assert reports[0]["out"] == reports[1]["out"]
    mapped = next(r for r in reports if r["state"] == "mapped")
    assert mapped["engine_bytes"] < path.stat().st_size / 10
    packed = [p for p in tmp_path.iterdir() if p.suffix == ".xnnpack"]
    assert len(packed) == 1


def test_the_engines_are_the_names_serving_engine_takes():
    from serving.settings import ENGINES

    assert tuple(kind.value for kind in EngineKind) == ENGINES
