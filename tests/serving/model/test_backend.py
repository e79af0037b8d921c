"""serving.model.backend: LiteRT first, then tflite-runtime, then tensorflow.lite; forcing one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from serving.errors import ModelLoadError
from serving.model.backend import PREFERENCE, select_backend
from tests.conftest import REPO

MODULES = {
    "litert": "ai_edge_litert",
    "tflite_runtime": "tflite_runtime",
    "tensorflow": "tensorflow",
}
INSTALLED = [name for name in PREFERENCE if importlib.util.find_spec(MODULES[name])]


def test_the_first_importable_backend_in_preference_order_wins():
    assert INSTALLED, "no interpreter backend installed in this environment"
    chosen = select_backend()
    assert chosen.name == INSTALLED[0]
    assert chosen.version not in ("", "unknown")


@pytest.mark.parametrize("name", INSTALLED)
def test_an_installed_backend_can_be_forced_and_serves_the_digits_model(name, digits_model):
    # A subprocess: forcing tensorflow imports all of TensorFlow, which must not leak
    # into this test process (other tests assert what is imported).
    code = (
        "import numpy as np\n"
        "from serving import Model\n"
        f"with Model.load({str(digits_model)!r}, backend={name!r}) as m:\n"
        "    out = m.predict({'pixels': np.zeros((2, 8, 8, 1), np.float32)})\n"
        "    print(m.backend.name, next(iter(out.values())).shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == f"{name} (2, 10)"


@pytest.mark.parametrize("name", [n for n in PREFERENCE if n not in INSTALLED])
def test_forcing_a_missing_backend_says_what_to_install(name):
    with pytest.raises(ModelLoadError, match=f"{name}: .*install ai-edge-litert") as caught:
        select_backend(name)
    assert caught.value.reason == "backend"
    assert caught.value.status_code == 503


def test_unknown_backend_is_refused():
    with pytest.raises(ModelLoadError, match="unknown interpreter backend 'onnx'"):
        select_backend("onnx")
