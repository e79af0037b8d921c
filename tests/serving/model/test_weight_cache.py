"""serving.model.weight_cache: the packed-weights file is never wrong, and never fatal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from serving.model import Model, select_backend
from serving.model.model_file import ModelFile
from serving.model.weight_cache import CacheKey, CacheState, WeightCache, cpu_features

BACKEND = os.environ.get("SERVING_BACKEND")
pytestmark = pytest.mark.skipif(
    select_backend(BACKEND).compiled is None,
    reason=f"the {select_backend(BACKEND).label} backend has no CompiledModel",
)
X = np.linspace(-1, 1, 3 * 2048, dtype=np.float32).reshape(3, 2048)


def served(path: Path, cache: Path) -> tuple[Model, np.ndarray]:
    model = Model.load(path, backend=BACKEND, engine="compiled", weight_cache_dir=cache)
    return model, model.predict({"features": X})["output_0"]


@pytest.fixture
def mlp(engine_models: Path) -> Path:
    return engine_models / "mlp.tflite"


@pytest.fixture
def expected(mlp: Path, tmp_path: Path) -> np.ndarray:
    """The answer with no cache at all: packed privately, in process memory."""
    with Model.load(mlp, backend=BACKEND, engine="interpreter") as model:
        return model.predict({"features": X})["output_0"]


def packed_file(cache: Path) -> Path:
    (found,) = cache.glob("*.xnnpack")
    return found


def test_the_key_names_the_model_the_runtime_and_the_cpu():
    base = CacheKey("ab" * 32, "litert 2.3.0", cpu_features())
    assert base.file_name.startswith("ab" * 12 + "-")
    assert base.file_name.endswith(".xnnpack")
    assert CacheKey("cd" * 32, base.runtime, base.cpu).file_name != base.file_name
    assert CacheKey(base.model_sha256, "litert 2.4.0", base.cpu).file_name != base.file_name
    assert CacheKey(base.model_sha256, base.runtime, "0" * 16).file_name != base.file_name
    assert cpu_features() == cpu_features()  # stable within a machine


def test_the_digest_is_the_content_sha256_read_once_per_file_version(mlp, tmp_path):
    import hashlib

    cache = WeightCache(tmp_path, runtime="r", timeout=5)
    file = ModelFile(str(mlp))
    key = cache.key(file)
    assert key.model_sha256 == hashlib.sha256(mlp.read_bytes()).hexdigest()
    (memo,) = (tmp_path / "memo").glob("*.sha256")
    assert memo.read_text() == key.model_sha256
    assert file.identity.text() in memo.name  # a replaced file has another identity
    file.close()


def test_packed_once_then_mapped_with_the_same_answers(mlp, tmp_path, expected):
    first, out1 = served(mlp, tmp_path)
    second, out2 = served(mlp, tmp_path)
    assert (first.weight_cache.state, second.weight_cache.state) == (
        CacheState.PACKED,
        CacheState.MAPPED,
    )
    np.testing.assert_allclose(out1, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out1, out2)
    manifest = json.loads(packed_file(tmp_path).with_suffix(".xnnpack.json").read_text())
    assert manifest["bytes"] == packed_file(tmp_path).stat().st_size
    assert manifest["runtime"] == select_backend(BACKEND).label


def test_a_truncated_file_is_packed_again(mlp, tmp_path, expected):
    served(mlp, tmp_path)[0].close()
    path = packed_file(tmp_path)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 3)
    model, out = served(mlp, tmp_path)
    assert model.weight_cache.state is CacheState.PACKED
    assert model.weight_cache.reason == f"repacked: bytes is {size // 3}, its manifest says {size}"
    assert path.stat().st_size == size
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_another_models_file_at_the_path_is_packed_again(mlp, engine_models, tmp_path, expected):
    served(mlp, tmp_path)[0].close()
    path = packed_file(tmp_path)
    size = path.stat().st_size
    # Another model's packed weights, copied over this model's file (and its manifest kept).
    other = tmp_path / "other"
    Model.load(
        engine_models / "mlp_int8.tflite",
        backend=BACKEND,
        engine="compiled",
        weight_cache_dir=other,
    ).close()
    foreign = packed_file(other).stat().st_size
    shutil.copy(packed_file(other), path)
    model, out = served(mlp, tmp_path)
    assert model.weight_cache.state is CacheState.PACKED
    assert model.weight_cache.reason == f"repacked: bytes is {foreign}, its manifest says {size}"
    assert path.stat().st_size == size
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_an_interrupted_packing_is_packed_again(mlp, tmp_path, expected):
    served(mlp, tmp_path)[0].close()
    path = packed_file(tmp_path)
    path.with_suffix(".xnnpack.json").unlink()  # as if the packer died before vouching for it
    model, out = served(mlp, tmp_path)
    assert model.weight_cache.state is CacheState.PACKED
    assert model.weight_cache.reason == "repacked: no manifest (packing was interrupted)"
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_an_unusable_folder_means_private_packing(mlp, tmp_path, expected):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    model, out = served(mlp, blocker / "cache")
    assert model.weight_cache.state is CacheState.PRIVATE
    assert model.weight_cache.reason.startswith(f"cache folder {blocker / 'cache'} unusable: ")
    assert model.footprint.shared_bytes == 0
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.fixture
def mounted(tmp_path: Path):
    """``mounted(options)``: a new tmpfs mounted ``-o options`` (root only), unmounted after."""
    mounts: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
        point.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", str(point)], check=False)


def test_a_read_only_temp_dir_means_private_packing(mlp, mounted, expected):
    cache = mounted("ro,size=1m")
    model, out = served(mlp, cache)
    assert model.weight_cache.state is CacheState.PRIVATE
    assert "Read-only file system" in model.weight_cache.reason
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_a_full_temp_dir_means_private_packing_not_an_abort(mlp, mounted, expected):
    # XNNPACK aborts the process when the file system fills up under it: room is checked first.
    cache = mounted("size=4m")
    model, out = served(mlp, cache)
    assert model.weight_cache.state is CacheState.PRIVATE
    assert model.weight_cache.reason.startswith(f"cache folder {cache} has ")
    assert "the packed weights need about" in model.weight_cache.reason
    assert not list(cache.glob("*.xnnpack"))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_discard_deletes_the_file_unless_it_is_busy(tmp_path):
    from serving.filelock import locked
    from serving.model.weight_cache import discard

    path = tmp_path / "weights.xnnpack"
    manifest = tmp_path / "weights.xnnpack.json"
    path.write_bytes(b"packed")
    manifest.write_text("{}")
    with locked(tmp_path / "weights.xnnpack.lock", exclusive=False, timeout=1):  # mapping now
        assert discard(path) is False
    assert path.exists()
    assert manifest.exists()
    assert discard(path) is True
    assert not path.exists()
    assert not manifest.exists()
    assert discard(path) is True  # already gone: nothing to do
