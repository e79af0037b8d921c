"""serving.repository.listing: the layout, local and gs:// (the real storage emulator).

Listing reads names only, never a model file, so the files here are any bytes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from serving.errors import ModelLoadError
from serving.repository.listing import Ignored, VersionSource, list_repository
from tests.gcs_emulator import StorageEmulator
from tests.serving.repository.conftest import make_tree

DATA = b"TFL3 not parsed by the listing"
CONFIG = '{"models": {"digits": {"versions": "all"}}}'
# relative name -> content; the junk each fits no part of the layout
TREE: dict[str, bytes | str] = {
    "digits/1/model.tflite": DATA,
    "digits/2/model.tflite": DATA * 2,
    "digits/2/labels.txt": "zero\n",
    "digits/03/model.tflite": DATA,
    "digits/latest/model.tflite": DATA,
    "digits/README.md": "notes",
    ".git/config": "x",
    "notes.txt": "x",
    "multi/7/model.tflite": DATA,
    "multi/8/saved_model.pb": DATA,
    "models.json": CONFIG,
}
NAME_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit"


def test_local_listing(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "repo", TREE)
    (root / "empty").mkdir()
    found = list_repository(str(root), cache_dir=tmp_path / "cache", timeout=5)

    def local(name: str) -> VersionSource:
        path = root / name
        return VersionSource(str(path), path.stat().st_size, None, path.stat().st_mtime_ns)

    assert {name: dict(v) for name, v in found.versions.items()} == {
        "digits": {1: local("digits/1/model.tflite"), 2: local("digits/2/model.tflite")},
        "empty": {},
        "multi": {7: local("multi/7/model.tflite")},
    }
    assert found.versions["digits"][2].size_bytes == 2 * len(DATA)
    assert found.config_text == CONFIG.encode()
    assert found.config_file == str(root / "models.json")
    rule = f"is not one URL path segment: it must be 1-128 {NAME_RULE}"
    version_rule = "is not a positive integer (1 to 18 digits, no leading zero)"
    assert sorted(found.ignored, key=lambda i: i.entry) == sorted(
        [
            Ignored(str(root / ".git"), f"model name '.git' {rule}"),
            Ignored(str(root / "digits/03"), f"version '03' {version_rule}"),
            Ignored(str(root / "digits/2/labels.txt"), "not model.tflite"),
            Ignored(str(root / "digits/README.md"), f"version 'README.md' {version_rule}"),
            Ignored(str(root / "digits/latest"), f"version 'latest' {version_rule}"),
            Ignored(str(root / "multi/8/saved_model.pb"), "not model.tflite"),
            Ignored(str(root / "multi/8"), "no model.tflite in it"),
            Ignored(str(root / "notes.txt"), "not a model folder"),
        ],
        key=lambda i: i.entry,
    )
    assert not (tmp_path / "cache").exists()  # a local repository is read in place


def test_local_repository_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as err:
        list_repository(str(tmp_path / "absent"), cache_dir=tmp_path, timeout=5)
    assert err.value.status_code == 503
    assert str(err.value) == f"model repository {tmp_path / 'absent'} is not a directory"


def upload_tree(emulator: StorageEmulator, bucket: str, prefix: str, tree: dict) -> None:
    for name, content in tree.items():
        data = content if isinstance(content, bytes) else content.encode()
        emulator.upload(bucket, f"{prefix}{name}", data)


def test_gcs_listing(storage_emulator: StorageEmulator, tmp_path: Path) -> None:
    upload_tree(storage_emulator, "bucket", "serving/repo/", TREE)
    storage_emulator.upload("bucket", "serving/other/x/1/model.tflite", DATA)  # outside it
    found = list_repository("gs://bucket/serving/repo/", cache_dir=tmp_path / "cache", timeout=10)
    base = "gs://bucket/serving/repo/"
    versions = {name: dict(v) for name, v in found.versions.items()}
    assert sorted(versions) == ["digits", "multi"]
    assert sorted(versions["digits"]) == [1, 2]
    two = versions["digits"][2]
    assert (two.uri, two.size_bytes) == (base + "digits/2/model.tflite", 2 * len(DATA))
    assert isinstance(two.generation, int)
    assert sorted(versions["multi"]) == [7]
    assert found.config_text == CONFIG.encode()
    assert found.config_file == base + "models.json"
    rule = f"is not one URL path segment: it must be 1-128 {NAME_RULE}"
    version_rule = "is not a positive integer (1 to 18 digits, no leading zero)"
    assert sorted(found.ignored, key=lambda i: i.entry) == sorted(
        [
            Ignored(base + ".git/", f"model name '.git' {rule}"),
            Ignored(base + "digits/03", f"version '03' {version_rule}"),
            Ignored(base + "digits/2/labels.txt", "not model.tflite"),
            Ignored(base + "digits/README.md", f"version 'README.md' {version_rule}"),
            Ignored(base + "digits/latest", f"version 'latest' {version_rule}"),
            Ignored(base + "multi/8/saved_model.pb", "not model.tflite"),
            Ignored(base + "notes.txt", "not a model folder"),
        ],
        key=lambda i: i.entry,
    )


def test_gcs_bucket_root_and_missing_bucket(
    storage_emulator: StorageEmulator, tmp_path: Path
) -> None:
    storage_emulator.upload("whole", "a/1/model.tflite", DATA)
    found = list_repository("gs://whole", cache_dir=tmp_path, timeout=10)
    assert found.versions["a"][1].uri == "gs://whole/a/1/model.tflite"
    with pytest.raises(ModelLoadError) as err:
        list_repository("gs://no-such-bucket/repo", cache_dir=tmp_path, timeout=10)
    assert str(err.value) == (
        "Cloud Storage bucket 'no-such-bucket' not found for gs://no-such-bucket/repo"
    )


def test_gcs_listing_is_bounded_when_storage_is_down(
    stopped_storage_emulator: StorageEmulator, tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as err:
        list_repository("gs://bucket/repo", cache_dir=tmp_path, timeout=1.0)
    assert time.monotonic() - started < 5
    assert err.value.status_code == 503
    assert "gs://bucket/repo" in str(err.value)
    assert "unreachable" in str(err.value) or "took longer than" in str(err.value)


def test_invalid_gcs_uri(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as err:
        list_repository("gs://Bad_Bucket!/x", cache_dir=tmp_path, timeout=1)
    assert str(err.value).startswith(
        "invalid Cloud Storage URI 'gs://Bad_Bucket!/x': bad bucket name"
    )
