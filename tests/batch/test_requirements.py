"""The batch environment's requirements (tests/test_main.py, also run there, keeps Beam out of
the function's import)."""

from __future__ import annotations

import re
from importlib import metadata

import pytest

from tests.batch.conftest import SKIP_WITHOUT_BEAM
from tests.conftest import REPO

pytest.importorskip("apache_beam", reason=SKIP_WITHOUT_BEAM)


def pins(path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, spec = re.match(r"([A-Za-z0-9_.\[\]-]+)\s*(.*)", line).groups()
            found[name.lower()] = spec
    return found


def test_worker_requirements_pin_what_the_function_pins_but_pillow():
    worker = pins(REPO / "batch" / "requirements-worker.txt")
    function = pins(REPO / "requirements.txt")
    assert set(worker) == set(function) - {"functions-framework"}
    differing = {name for name in worker if worker[name] != function[name]}
    assert differing == {"pillow"}  # Beam 2.77: pillow<13


def test_the_environment_has_the_pins():
    for name, spec in pins(REPO / "batch" / "requirements-worker.txt").items():
        if spec.startswith("=="):
            assert metadata.version(name) == spec[2:], name
    assert metadata.version("apache-beam") == "2.77.0"
