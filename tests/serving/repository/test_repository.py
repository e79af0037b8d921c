"""serving.repository.repository: lazy loads, broken versions, memory, gs://, polling.

Real models (tests/model_factory.py, tests/repository_models.py), real engines, local
folders and the real storage emulator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from serving.admission import BodyForm, cost
from serving.errors import ModelLoadError, ServiceUnavailable
from serving.memory import INSTANCE_BASE_BYTES, WORKER_BASE_BYTES
from serving.repository import (
    InsufficientMemory,
    InvalidSegment,
    Lease,
    Repository,
    RepositoryConfigError,
    VersionState,
)
from serving.repository import repository as repository_module
from tests.concurrency import at_once
from tests.conftest import REPO
from tests.gcs_emulator import StorageEmulator
from tests.serving.repository.conftest import log_lines, make_tree

PIXELS = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8, 1)
FEATURES = np.linspace(-1, 1, 512, dtype=np.float32).reshape(1, 512)
MAX_REQUEST = 1 << 20  # the fixture's max_request_bytes


def states(repository: Repository) -> dict[tuple[str, int | None], str]:
    return {(s.name, s.version): s.state.value for s in repository.status()}


def limit_for(capacity: int) -> int:
    """The MEMORY_LIMIT_BYTES that leaves one worker ``capacity`` bytes for models."""
    return capacity + INSTANCE_BASE_BYTES + WORKER_BASE_BYTES + cost(BodyForm.JSON, MAX_REQUEST)


@pytest.fixture
def digits_repository(models: Path, tmp_path: Path) -> Path:
    return make_tree(
        tmp_path / "repo",
        {
            "digits/1/model.tflite": models / "float32.tflite",
            "digits/2/model.tflite": models / "int8.tflite",
            "multi/1/model.tflite": models / "multi.tflite",
            "README.md": "not a model",
        },
    )


def test_listing_loads_nothing_and_a_request_loads_only_its_version(
    digits_repository, open_repository, capsys
):
    repository = open_repository(digits_repository)
    assert states(repository) == {("digits", 2): "START", ("multi", 1): "START"}
    assert repository.held_bytes == 0
    with repository.get("digits") as lease:
        assert (lease.name, lease.version) == ("digits", 2)
        assert lease.load_ms is not None
        probabilities = lease.model.predict({"pixels": PIXELS})["output_0"]
    assert probabilities.shape == (1, 10)
    assert abs(float(probabilities.sum()) - 1) < 0.05
    assert states(repository) == {("digits", 2): "AVAILABLE", ("multi", 1): "START"}
    assert repository.held_bytes > 0
    loaded = [line for line in log_lines(capsys) if line["message"] == "model version loaded"]
    assert [(line["model_name"], line["model_version"]) for line in loaded] == [("digits", 2)]
    with repository.get("digits", 2) as again:
        assert again.load_ms is None  # warm


def test_the_python_api(digits_repository, open_repository, monkeypatch):
    (digits_repository / "models.json").write_text(
        json.dumps({"models": {"digits": {"versions": "all", "labels": {"stable": 1}}}})
    )
    monkeypatch.setenv("MODEL_PATH", "ignored-by-the-python-api.tflite")
    repository = Repository.open(digits_repository)
    try:
        with repository.model("digits", version=1) as model:
            float32 = model.predict({"pixels": PIXELS})["output_0"]
        with repository.model("digits", label="stable") as model:
            stable = model.predict({"pixels": PIXELS})["output_0"]
        with repository.model("digits") as model:  # the highest served: 2 (int8)
            int8 = model.predict({"pixels": PIXELS})["output_0"]
        np.testing.assert_array_equal(float32, stable)
        assert int(np.argmax(float32)) == int(np.argmax(int8))
        assert states(repository) == {
            ("digits", 1): "AVAILABLE",
            ("digits", 2): "AVAILABLE",
            ("multi", 1): "START",
        }
    finally:
        repository.close()
    assert states(repository)[("digits", 1)] == "UNLOADED"


def test_concurrent_first_requests_share_one_load(digits_repository, open_repository, capsys):
    repository = open_repository(digits_repository)
    leases = at_once(8, lambda: repository.get("digits"))
    assert all(isinstance(lease, Lease) for lease in leases), leases
    assert len({id(lease.model) for lease in leases}) == 1
    assert sum(lease.load_ms is not None for lease in leases) == 1
    for lease in leases:
        lease.release()
    loaded = [line for line in log_lines(capsys) if line["message"] == "model version loaded"]
    assert len(loaded) == 1


def test_loads_of_different_models_do_not_wait_for_each_other(
    digits_repository, open_repository, monkeypatch
):
    repository = open_repository(digits_repository)
    gate = threading.Event()
    real_fetch = repository_module.source.fetch

    def slow_for_multi(uri, **kwargs):
        if "/multi/" in uri:
            assert gate.wait(10), "the digits load never finished"
        return real_fetch(uri, **kwargs)

    monkeypatch.setattr(repository_module.source, "fetch", slow_for_multi)
    slow = threading.Thread(target=lambda: repository.get("multi").release())
    slow.start()
    deadline = time.monotonic() + 5
    while states(repository)[("multi", 1)] != "LOADING" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert states(repository)[("multi", 1)] == "LOADING"
    with repository.get("digits") as lease:  # loads while multi's load is still waiting
        assert lease.load_ms is not None
    assert states(repository)[("multi", 1)] == "LOADING"
    gate.set()
    slow.join(10)
    assert states(repository)[("multi", 1)] == "AVAILABLE"


def test_a_broken_version_fails_alone_and_is_retried(models, tmp_path, open_repository):
    root = make_tree(
        tmp_path / "repo",
        {
            "digits/1/model.tflite": models / "float32.tflite",
            "broken/1/model.tflite": models / "not_a_model.tflite",
            "custom/1/model.tflite": models / "custom_op.tflite",
            "gone/1/model.tflite": models / "int8.tflite",
        },
    )
    repository = open_repository(root)
    broken = root / "broken/1/model.tflite"
    with pytest.raises(ModelLoadError) as err:
        repository.get("broken")
    assert err.value.status_code == 503
    assert str(err.value) == f"{broken} is not a TFLite flatbuffer (no valid 'TFL3' model header)"
    with pytest.raises(ModelLoadError) as custom:
        repository.get("custom")
    assert custom.value.status_code == 503
    assert str(custom.value).startswith(f"{root / 'custom/1/model.tflite'} uses the custom op")
    (root / "gone/1/model.tflite").unlink()  # missing after the listing
    with pytest.raises(ModelLoadError) as gone:
        repository.get("gone")
    assert str(gone.value) == f"model file not found: {root / 'gone/1/model.tflite'}"

    with repository.get("digits") as lease:  # the others keep serving
        assert lease.model.predict({"pixels": PIXELS})["output_0"].shape == (1, 10)
    found = {s.name: s for s in repository.status()}
    assert found["broken"].state is VersionState.FAILED
    assert str(found["broken"].error) == str(err.value)
    assert found["digits"].state is VersionState.AVAILABLE

    shutil.copyfile(models / "int8.tflite", broken)  # fixed: the next request loads it
    with repository.get("broken") as lease:
        assert lease.load_ms is not None
        assert lease.model.predict({"pixels": PIXELS})["output_0"].shape == (1, 10)


def test_models_json_errors_answer_for_their_model(digits_repository, open_repository):
    config = digits_repository / "models.json"
    config.write_text(json.dumps({"models": {"digits": {"versions": [1], "labels": {"b": 2}}}}))
    repository = open_repository(digits_repository)
    with pytest.raises(RepositoryConfigError) as err:
        repository.get("digits")
    assert err.value.status_code == 503
    assert str(err.value) == (
        f"{config}: models.digits.labels.b: expected one of the versions the policy serves "
        "([1]), received 2"
    )
    with repository.get("multi") as lease:
        assert lease.version == 1
    statuses = {s.name: s for s in repository.status()}
    assert (statuses["digits"].version, statuses["digits"].state) == (None, VersionState.FAILED)
    assert statuses["digits"].error is err.value or str(statuses["digits"].error) == str(err.value)


def test_path_segments_never_leave_the_repository(models, tmp_path, open_repository):
    make_tree(tmp_path, {"secret/1/model.tflite": models / "int8.tflite"})
    root = make_tree(tmp_path / "repo", {"digits/1/model.tflite": models / "int8.tflite"})
    repository = open_repository(root)
    for name in ("..", "../secret", str(tmp_path / "secret"), "%2e%2e%2fsecret", "", "digits/1"):
        with pytest.raises(InvalidSegment) as err:
            repository.get(name)
        assert err.value.status_code == 400
    with pytest.raises(InvalidSegment):
        repository.get("digits", "../../secret/1")
    assert repository.held_bytes == 0


@pytest.fixture
def mlp_repository(repository_models: Path, tmp_path: Path) -> Path:
    """Four distinct 6.3 MB models, a .. d, one version each."""
    files = {
        f"{name}/1/model.tflite": repository_models / f"mlp_{i}.tflite"
        for i, name in enumerate("abcd")
    }
    return make_tree(tmp_path / "mlp-repo", files)


def measured_bytes(location: Path | str, open_repository, names: str = "abcd") -> tuple[int, int]:
    """The least and the most one of ``names`` holds once loaded, measured by a repository
    without a limit (engines are measured as the process's growth: it varies a little)."""
    repository = open_repository(location, pool_size=1, memory_limit=0)
    held = []
    # Each twice, unloaded in between: a reload packs the weights again and measures what
    # the heap then gives (it varied by 3 MB in a long test session), and eviction reserves
    # a version's last measured footprint.
    for _ in range(2):
        for name in names:
            before = repository.held_bytes
            with repository.get(name):
                pass
            held.append(repository.held_bytes - before)
            repository.unload(name)
    repository.close()
    assert min(held) > 6_000_000  # at least its weights
    return min(held), max(held)


def test_eviction_round_robin_stays_within_memory(mlp_repository, open_repository, capsys):
    # A loaded version counts at least its weights (the file's size), so four never fit in
    # less than four files; measured footprints spread (6.4-10.6 MB in one session: a reload
    # packs again on a fuller heap), so two fitting is checked against the most measured.
    size = min(p.stat().st_size for p in mlp_repository.rglob("model.tflite"))
    capacity = 4 * size - (1 << 20)
    _, most = measured_bytes(mlp_repository, open_repository)
    assert 2 * most <= capacity, (most, capacity)  # two fit
    repository = open_repository(mlp_repository, pool_size=1, memory_limit=limit_for(capacity))
    assert repository.capacity == capacity
    log_lines(capsys)  # drop the measuring repository's lines
    pinned = repository.get("a")  # in use for the whole round: never unloaded
    answers = []
    for name in "bcdbcdbcd":
        with repository.get(name) as lease:
            answers.append(lease.model.predict({"features": FEATURES})["output_0"].shape)
        assert repository.held_bytes <= capacity
    assert answers == [(1, 8)] * 9
    assert pinned.model.predict({"features": FEATURES})["output_0"].shape == (1, 8)
    pinned.release()
    for name in "abcd":  # a, now idle, may go too
        with repository.model(name) as model:
            assert model.predict({"features": FEATURES})["output_0"].shape == (1, 8)
        assert repository.held_bytes <= capacity
    lines = log_lines(capsys)
    unloaded = [line for line in lines if line["message"] == "model version unloaded"]
    loaded = [line for line in lines if line["message"] == "model version loaded"]
    assert len(loaded) >= 10  # b, c, d reloaded in turn
    assert len(unloaded) == len(loaded) - sum(
        s.state is VersionState.AVAILABLE for s in repository.status()
    )
    names_unloaded_while_pinned = [line["model_name"] for line in unloaded[: len(loaded) - 5]]
    assert "a" not in names_unloaded_while_pinned
    assert all(line["freed_bytes"] > 0 for line in unloaded)
    assert all(line["repository_held_bytes"] <= capacity for line in unloaded + loaded)
    assert all(line["reason"].startswith("room for ") for line in unloaded)


def test_packed_weights_go_with_the_unload(mlp_repository, open_repository, tmp_path):
    repository = open_repository(mlp_repository, pool_size=1)
    with repository.get("a") as lease:
        use = lease.model.weight_cache
    if use is None or use.path is None:
        pytest.skip(f"no packed-weights file with the {lease.model.backend.name} backend")
    assert use.path.exists()
    assert repository.unload("a")
    assert not use.path.exists()
    assert states(repository)[("a", 1)] == "UNLOADED"
    with repository.get("a") as again:  # packs again
        assert again.load_ms is not None
        assert again.model.predict({"features": FEATURES})["output_0"].shape == (1, 8)


def test_a_version_in_use_is_waited_for_then_refused(mlp_repository, open_repository):
    least, most = measured_bytes(mlp_repository, open_repository)
    size = (mlp_repository / "b/1/model.tflite").stat().st_size
    capacity = (most + least + size) // 2  # one fits; one and the next one's estimate do not
    repository = open_repository(
        mlp_repository, pool_size=1, memory_limit=limit_for(capacity), admission_timeout=0.3
    )
    with repository.get("a"):
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as err:
            repository.get("b")
        assert 0.25 < time.monotonic() - started < 5
        assert err.value.status_code == 503
        assert str(err.value).startswith("no room to load model 'b' version 1 (about ")
        assert states(repository)[("a", 1)] == "AVAILABLE"
    with repository.get("b") as lease:  # a is idle now: unloaded to make room
        assert lease.model.predict({"features": FEATURES})["output_0"].shape == (1, 8)
    assert states(repository)[("a", 1)] == "UNLOADED"


def test_a_version_too_big_for_the_instance(mlp_repository, open_repository):
    repository = open_repository(mlp_repository, pool_size=1, memory_limit=limit_for(1 << 20))
    with pytest.raises(InsufficientMemory) as err:
        repository.get("a")
    assert err.value.status_code == 503
    size = (mlp_repository / "a/1/model.tflite").stat().st_size
    assert str(err.value) == (
        f"model 'a' version 1 ({mlp_repository / 'a/1/model.tflite'}, {size / (1 << 20):.1f} MiB) "
        f"needs about {size / (1 << 20):.1f} MiB loaded; this worker has 1.0 MiB for models "
        f"(MEMORY_LIMIT_BYTES={limit_for(1 << 20)} less the runtime and one request, WORKERS=1)"
    )
    assert repository.held_bytes == 0


def test_ignored_entries_are_logged_once(digits_repository, open_repository, capsys):
    repository = open_repository(digits_repository)
    repository.refresh()
    repository.refresh()
    ignored = [line for line in log_lines(capsys) if line.get("entry")]
    assert [line["entry"] for line in ignored] == [str(digits_repository / "README.md")]
    assert ignored[0]["severity"] == "WARNING"
    assert ignored[0]["message"] == (
        f"model repository entry ignored: {digits_repository / 'README.md'}: not a model folder"
    )


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not picked up in time"
        time.sleep(0.05)


def test_polling_picks_up_new_versions_labels_and_removals(
    digits_repository, models, open_repository, capsys
):
    repository = open_repository(digits_repository, repository_poll=0.1)
    with repository.get("digits") as lease:
        assert lease.version == 2
    make_tree(digits_repository, {"digits/3/model.tflite": models / "float32.tflite"})
    wait_for(lambda: ("digits", 3) in states(repository))
    assert states(repository)[("digits", 3)] == "START"
    wait_for(lambda: states(repository).get(("digits", 2)) is None)
    with repository.get("digits") as lease:
        assert lease.version == 3
    (digits_repository / "models.json").write_text(
        json.dumps({"models": {"digits": {"versions": "all", "labels": {"canary": 3}}}})
    )
    wait_for(lambda: ("digits", 1) in states(repository))
    with repository.get("digits", label="canary") as lease:
        assert lease.version == 3
    with repository.get("digits", 3) as lease:
        before = lease.model
    shutil.copyfile(models / "int8.tflite", digits_repository / "digits/3/model.tflite.tmp")
    os.replace(
        digits_repository / "digits/3/model.tflite.tmp", digits_repository / "digits/3/model.tflite"
    )
    wait_for(lambda: states(repository).get(("digits", 3)) == "START")  # a new file: not loaded
    with repository.get("digits", 3) as lease:
        assert lease.model is not before
        assert lease.model.inputs[0].quantized  # the int8 model now
    unloaded = [line for line in log_lines(capsys) if line["message"] == "model version unloaded"]
    assert [(u["model_name"], u["model_version"], u["reason"]) for u in unloaded] == [
        ("digits", 2, "left the repository or changed"),
        ("digits", 3, "left the repository or changed"),
    ]
    poller = repository._poller
    repository.close()
    assert poller is not None
    assert not poller.is_alive()


def upload(emulator: StorageEmulator, name: str, path: Path) -> None:
    emulator.upload("bucket", f"repo/{name}", path.read_bytes())


def downloads(emulator: StorageEmulator) -> int:
    return sum("GET /download/storage/v1/" in line for line in emulator.logs().splitlines())


def test_gcs_repository(models, storage_emulator, open_repository, tmp_path):
    upload(storage_emulator, "digits/1/model.tflite", models / "float32.tflite")
    upload(storage_emulator, "digits/2/model.tflite", models / "int8.tflite")
    upload(storage_emulator, "multi/1/model.tflite", models / "multi.tflite")
    storage_emulator.upload(
        "bucket", "repo/models.json", b'{"models": {"digits": {"versions": "all"}}}'
    )
    repository = open_repository("gs://bucket/repo", repository_poll=0.2)
    assert states(repository) == {
        ("digits", 1): "START",
        ("digits", 2): "START",
        ("multi", 1): "START",
    }
    before = downloads(storage_emulator)
    with repository.get("digits", 1) as lease:
        assert lease.model.predict({"pixels": PIXELS})["output_0"].shape == (1, 10)
    assert downloads(storage_emulator) == before + 1  # digits 1 only: lazy
    held = repository.held_bytes
    assert held >= (models / "float32.tflite").stat().st_size  # the download counts
    assert repository.unload("digits", 1)
    size = (models / "float32.tflite").stat().st_size
    assert repository.held_bytes == size  # the cached download stays, and counts
    with repository.get("digits", 1) as lease:  # reloaded from the verified cache
        assert lease.load_ms is not None
    assert downloads(storage_emulator) == before + 1

    upload(storage_emulator, "digits/3/model.tflite", models / "float32.tflite")
    wait_for(lambda: ("digits", 3) in states(repository))
    with repository.get("digits") as lease:
        assert lease.version == 3
    assert downloads(storage_emulator) == before + 2


def test_concurrent_round_robin_never_unloads_a_version_in_use(mlp_repository, open_repository):
    """Two threads over four models, room for two and a half: every prediction runs (a
    closed model would answer 503), and the repository never holds more than its share."""
    capacity = int(measured_bytes(mlp_repository, open_repository)[1] * 2.6)
    repository = open_repository(
        mlp_repository, pool_size=1, memory_limit=limit_for(capacity), admission_timeout=10
    )
    peaks: list[int] = []

    def worker(order: str) -> int:
        done = 0
        for name in order * 3:
            with repository.model(name) as model:
                assert model.predict({"features": FEATURES})["output_0"].shape == (1, 8)
                peaks.append(repository.held_bytes)
                done += 1
        return done

    orders = ["abcd", "dcba"]
    results = at_once(2, lambda: worker(orders.pop()))  # list.pop is atomic
    assert results == [12, 12], results
    assert max(peaks) <= capacity


def test_a_footprint_measured_over_the_limit_is_refused_after_the_load(
    mlp_repository, open_repository
):
    size = (mlp_repository / "a/1/model.tflite").stat().st_size
    least, _ = measured_bytes(mlp_repository, open_repository)
    if least < size * 1.1:
        pytest.skip(f"the measured footprint ({least}) is too close to the estimate ({size})")
    capacity = (size + least) // 2  # the estimate fits, the measured footprint does not
    repository = open_repository(mlp_repository, pool_size=1, memory_limit=limit_for(capacity))
    with pytest.raises(InsufficientMemory) as err:
        repository.get("a")
    assert err.value.status_code == 503
    message = str(err.value)
    assert message.startswith(f"model 'a' version 1 ({mlp_repository / 'a/1/model.tflite'}) holds ")
    assert message.endswith(
        f"once loaded; this worker has {capacity / (1 << 20):.1f} MiB for "
        f"models (MEMORY_LIMIT_BYTES={limit_for(capacity)} less the runtime "
        "and one request, WORKERS=1)"
    )
    assert repository.held_bytes == 0
    assert states(repository)[("a", 1)] == "FAILED"


def test_a_failed_relisting_keeps_the_last_listing(digits_repository, open_repository, capsys):
    repository = open_repository(digits_repository, repository_poll=0.05)
    with repository.get("digits") as lease:
        assert lease.version == 2
    moved = digits_repository.with_name("moved")
    digits_repository.rename(moved)
    wait_for(lambda: any("re-listing failed" in line["message"] for line in log_lines(capsys)))
    assert states(repository) == {("digits", 2): "AVAILABLE", ("multi", 1): "START"}
    with repository.get("digits") as lease:  # loaded: still serving
        assert lease.model.predict({"pixels": PIXELS})["output_0"].shape == (1, 10)
    moved.rename(digits_repository)


def test_cached_downloads_go_when_room_is_needed(
    repository_models, storage_emulator, open_repository, capsys
):
    for i, name in enumerate("abc"):
        upload(storage_emulator, f"{name}/1/model.tflite", repository_models / f"mlp_{i}.tflite")
    one = measured_bytes("gs://bucket/repo", open_repository, "abc")[1]  # with the download
    size = (repository_models / "mlp_0.tflite").stat().st_size
    # Room for one loaded version and its download, not for the next version's estimate
    # (weights and download: 2 x size) beside the previous one's kept download.
    floor = max(one, 2 * size)
    if floor >= 3 * size:
        pytest.skip(f"one loaded version ({one}) leaves no room below three downloads")
    capacity = (floor + 3 * size) // 2
    repository = open_repository("gs://bucket/repo", pool_size=1, memory_limit=limit_for(capacity))
    log_lines(capsys)
    for name in "abcab":
        with repository.model(name) as model:
            assert model.predict({"features": FEATURES})["output_0"].shape == (1, 8)
        assert repository.held_bytes <= capacity
    lines = log_lines(capsys)
    removed = [line for line in lines if line["message"] == "cached model download removed"]
    assert removed, [line["message"] for line in lines]
    sizes = {n: (repository_models / f"mlp_{i}.tflite").stat().st_size for i, n in enumerate("abc")}
    assert all(line["freed_bytes"] == sizes[line["model_name"]] for line in removed), removed
    # three models, downloaded once each by the unlimited repository into the same cache:
    # any further download is one that went for room and was needed again
    assert downloads(storage_emulator) > 3


def test_importing_and_listing_load_neither_numpy_nor_cloud_storage(digits_repository, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from serving.repository import Repository
        from serving.settings import Settings
        settings = Settings(model_path="", model_repository={str(digits_repository)!r},
                            memory_limit=0, cache_dir=Path({str(tmp_path)!r}))
        repository = Repository.open({str(digits_repository)!r}, settings)
        print(sorted(repository.catalog().names))
        print([m for m in ("numpy", "google.cloud.storage") if m in sys.modules])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    assert [line for line in out.stdout.splitlines() if not line.startswith("{")] == [
        "['digits', 'multi']",
        "[]",
    ]
