"""Repositories for the route tests, served in-process or by the real server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from serving.http import app
from tests.serving.repository.conftest import make_tree

# The bundled digits model as two versions, labelled: no TensorFlow needed to build it.
DIGITS_CONFIG = {"models": {"digits": {"versions": "all", "labels": {"stable": 1, "canary": 2}}}}


def make_repository(root: Path, versions: dict[str, Path], config: dict | None = None) -> Path:
    """``root`` holding ``versions`` (``"name/version"`` -> a model file to copy) and, when
    given, ``models.json``."""
    files: dict[str, Path | str] = {f"{where}/model.tflite": m for where, m in versions.items()}
    if config is not None:
        files["models.json"] = json.dumps(config)
    return make_tree(root, files)


@pytest.fixture(scope="session")
def digits_repository(tmp_path_factory: pytest.TempPathFactory, digits_model: Path) -> Path:
    """``digits`` versions 1 and 2 (the digits model), labels ``stable`` and ``canary``."""
    root = tmp_path_factory.mktemp("digits-repository")
    return make_repository(
        root, {"digits/1": digits_model, "digits/2": digits_model}, DIGITS_CONFIG
    )


@pytest.fixture
def repository_client_for(
    client_for: Callable[..., FlaskClient],
) -> Iterator[Callable[..., FlaskClient]]:
    """``repository_client_for(location, **env)``: the app serving MODEL_REPOSITORY=location
    (every exchange checked against /openapi.json); its repository is closed after the test."""

    def make(location: Path | str, **env: str) -> FlaskClient:
        return client_for("", MODEL_REPOSITORY=str(location), **env)  # MODEL_PATH empty: unset

    yield make
    repository = app.RUNTIME._repository
    if repository is not None:
        repository.close()
