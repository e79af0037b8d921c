"""Fixtures of the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy import fake_gcloud


@pytest.fixture
def fake_dir(tmp_path: Path) -> Path:
    """A directory holding the fake gcloud (and its call log)."""
    directory = tmp_path / "bin"
    fake_gcloud.install(directory)
    return directory
