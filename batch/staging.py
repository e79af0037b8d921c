"""What Dataflow workers need beside Beam: the worker requirements and the project's code.

Workers install ``batch/requirements-worker.txt`` (LiteRT, numpy, orjson, Pillow,
google-cloud-storage) and a source package of :mod:`serving` and :mod:`batch`, built by
Beam from a ``setup.py`` this module writes into a temporary folder beside copies of the
two packages: the repository root keeps no ``setup.py`` (the function's deploy uploads the
root), and nothing else of the checkout (tests, bench, the converter) is shipped.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKER_REQUIREMENTS = REPO / "batch" / "requirements-worker.txt"
PACKAGES = ("serving", "batch")
DISTRIBUTION = "tflite-batch-worker"

_SETUP = f'''"""Written by batch/staging.py: the code Dataflow workers import."""

import setuptools

setuptools.setup(
    name="{DISTRIBUTION}",
    version="0.1.0",
    packages=setuptools.find_packages(include=[{", ".join(f'"{p}", "{p}.*"' for p in PACKAGES)}]),
)
'''


def write_setup(into: Path | None = None) -> Path:
    """A ``setup.py`` (in ``into``, else a new temporary folder) packaging the code only."""
    if into is None:
        into = tempfile.mkdtemp(prefix="batch-staging-")
        atexit.register(shutil.rmtree, into, ignore_errors=True)  # staged by then
    root = Path(into)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package,
            root / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]", "requirements*.txt"),
        )
    setup = root / "setup.py"
    setup.write_text(_SETUP)
    return setup
