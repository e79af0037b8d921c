"""Repositories of real models on disk and in the storage emulator, and log capture."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from serving import logs
from serving.settings import Settings


@pytest.fixture(autouse=True)
def info_logs() -> None:
    """The load and unload lines are INFO: whatever level an earlier test configured."""
    logs.configure("INFO")


def make_tree(root: Path, files: dict[str, Path | bytes | str]) -> Path:
    """``root`` holding ``files`` (relative name -> a file to copy, bytes or text)."""
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return root


def settings_for(location: Path | str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a repository at ``location``: caches under ``tmp_path``, no memory
    limit unless given, the installed backend the test run asks for."""
    values: dict[str, Any] = {
        "model_path": "",
        "model_repository": str(location),
        "cache_dir": tmp_path / "model-cache",
        "weight_cache_dir": tmp_path / "weight-cache",
        "backend": os.environ.get("SERVING_BACKEND") or None,
        "gcs_timeout": 10.0,
        "max_request_bytes": 1 << 20,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def open_repository(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``open_repository(location, **settings)``: a listed Repository, closed after the test."""
    from serving.repository import Repository

    opened: list[Repository] = []

    def make(location: Path | str, **overrides: Any) -> Repository:
        repository = Repository.open(location, settings_for(location, tmp_path, **overrides))
        opened.append(repository)
        return repository

    yield make
    for repository in opened:
        repository.close()


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The JSON log lines written to stdout so far (others are skipped)."""
    lines = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines
