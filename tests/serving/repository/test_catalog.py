"""serving.repository.catalog: policies and labels applied to what is present; resolve()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.errors import BadRequest
from serving.repository.catalog import Catalog, build
from serving.repository.errors import ModelNotFound, RepositoryConfigError
from serving.repository.listing import list_repository
from serving.repository.names import InvalidSegment
from tests.serving.repository.conftest import make_tree

DATA = b"not parsed by the listing"


def catalog_of(root: Path, versions: dict[str, list[int]], config: object = None) -> Catalog:
    files: dict[str, bytes | str] = {
        f"{name}/{v}/model.tflite": DATA for name, vs in versions.items() for v in vs
    }
    if config is not None:
        files["models.json"] = config if isinstance(config, str) else json.dumps(config)
    make_tree(root, files)
    return build(list_repository(str(root), cache_dir=root / "cache", timeout=5))


def test_a_model_models_json_does_not_name_serves_its_latest_version(tmp_path: Path) -> None:
    found = catalog_of(tmp_path, {"digits": [1, 2, 10], "other": [3]})
    assert found.names == ("digits", "other")
    assert found.models["digits"].present == (1, 2, 10)
    assert found.models["digits"].served == (10,)
    assert found.resolve("digits") == (found.models["digits"], 10)
    assert found.resolve("digits", 10)[1] == 10
    assert found.resolve("digits", "10")[1] == 10


def test_policies_and_labels(tmp_path: Path) -> None:
    config = {
        "models": {
            "all": {"versions": "all", "labels": {"stable": 1, "canary": 2}},
            "some": {"versions": [1, 3], "labels": {"stable": 1}},
            "latest": {"versions": "latest"},
        }
    }
    found = catalog_of(tmp_path, {"all": [1, 2], "some": [1, 2, 3], "latest": [4, 5]}, config)
    assert found.models["all"].served == (1, 2)
    assert found.models["some"].served == (1, 3)
    assert found.models["latest"].served == (5,)
    assert found.resolve("all", label="canary")[1] == 2
    assert found.resolve("all")[1] == 2
    assert found.resolve("some", label="stable")[1] == 1
    assert found.resolve("some")[1] == 3


def test_not_found_messages_name_what_exists(tmp_path: Path) -> None:
    config = {"models": {"digits": {"versions": [1, 3], "labels": {"stable": 1}}}}
    found = catalog_of(tmp_path, {"digits": [1, 2, 3], "other": [1]}, config)
    cases = [
        (("nope",), "model 'nope' not found; the repository's models: 'digits', 'other'"),
        (
            ("digits", 2),
            "version 2 of model 'digits' is not served (its version policy [1, 3] serves: 1, 3)",
        ),
        (("digits", 9), "model 'digits' has no version 9; it serves: 1, 3"),
        (("digits", None, "canary"), "model 'digits' has no label 'canary'; its labels: 'stable'"),
        (("other", None, "stable"), "model 'other' has no label 'stable'; its labels: none"),
    ]
    for args, message in cases:
        with pytest.raises(ModelNotFound) as err:
            found.resolve(*args)
        assert err.value.status_code == 404
        assert str(err.value) == message


def test_path_segments_that_leave_the_repository_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "model.tflite").write_bytes(DATA)
    found = catalog_of(tmp_path / "repo", {"digits": [1]})
    for name in ("..", "../secret", "/etc/passwd", "digits/..", "%2e%2e", "a%2Fb", "", "."):
        with pytest.raises(InvalidSegment) as err:
            found.resolve(name)
        assert err.value.status_code == 400
        assert str(err.value).startswith(f"model name {name!r} is not one URL path segment")
    for version in ("../1", "1/..", "%2F1", "", "0"):
        with pytest.raises(InvalidSegment) as err:
            found.resolve("digits", version)
        assert err.value.status_code == 400
    with pytest.raises(InvalidSegment):
        found.resolve("digits", label="../stable")
    with pytest.raises(BadRequest) as both:
        found.resolve("digits", 1, "stable")
    assert str(both.value) == "model 'digits': give a version or a label, not both"


def test_a_label_outside_the_policy_fails_that_model_only(tmp_path: Path) -> None:
    config = {"models": {"digits": {"labels": {"canary": 1}}, "other": {"versions": "all"}}}
    found = catalog_of(tmp_path, {"digits": [1, 2], "other": [1, 2]}, config)
    with pytest.raises(RepositoryConfigError) as err:
        found.resolve("digits", 2)
    assert err.value.status_code == 503
    assert str(err.value) == (
        f"{tmp_path / 'models.json'}: models.digits.labels.canary: expected one of the "
        "versions its policy serves (2), received 1"
    )
    assert found.resolve("other", 1)[1] == 1


def test_specific_versions_that_are_absent(tmp_path: Path) -> None:
    found = catalog_of(tmp_path, {"digits": [1, 2]}, {"models": {"digits": {"versions": [2, 3]}}})
    with pytest.raises(RepositoryConfigError) as err:
        found.resolve("digits")
    assert str(err.value) == (
        f"{tmp_path / 'models.json'}: models.digits.versions: expected versions digits has in "
        f"{tmp_path} (1, 2), received [2, 3]"
    )


def test_a_configured_model_without_a_folder(tmp_path: Path) -> None:
    found = catalog_of(tmp_path, {"digits": [1]}, {"models": {"ghost": {}}})
    assert found.names == ("digits", "ghost")
    with pytest.raises(RepositoryConfigError) as err:
        found.resolve("ghost")
    assert str(err.value) == (
        f"{tmp_path / 'models.json'}: models.ghost: expected a model folder "
        f"ghost/<version>/model.tflite in {tmp_path}, received no such folder"
    )
    assert found.resolve("digits")[1] == 1


def test_an_unusable_file_fails_every_model_with_its_message(tmp_path: Path) -> None:
    found = catalog_of(tmp_path, {"digits": [1], "other": [1]}, '{"models": {"digits": }')
    assert found.names == ("digits", "other")
    for name in found.names:
        with pytest.raises(RepositoryConfigError) as err:
            found.resolve(name)
        assert str(err.value) == (
            f"{tmp_path / 'models.json'}: the file: expected JSON, received Expecting value "
            "at line 1 column 23"
        )
    with pytest.raises(ModelNotFound):  # an unknown model is still a 404
        found.resolve("nope")


def test_a_folder_without_versions_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    found = catalog_of(tmp_path, {"digits": [1]})
    assert found.names == ("digits",)
