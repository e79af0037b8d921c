"""``pip install .``: the package works from any folder, as the README and docs/ say.

The project is installed with pip into a throwaway virtual environment, from a copy of the
files a source distribution holds (so the checkout gets no build/ or egg-info). The
dependencies are not downloaded again: a ``.pth`` file lends the venv this environment's
site-packages (``--no-deps``), which hold requirements.txt's and, in .venv, TensorFlow. Every
command then runs in a temporary folder, outside the checkout, with no PYTHONPATH.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import REPO
from tests.server import free_port

# What the package is built from (pyproject.toml reads the requirement files and README.md).
SOURCES = ("pyproject.toml", "README.md", "requirements.txt", "convert", "serving")
PIP = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of a venv where ``pip install --no-deps .`` installed the project."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=60)
    python = _venv_python(venv)
    (Path(_site_packages(python)) / "lent.pth").write_text("\n".join(site.getsitepackages()))
    started = time.monotonic()
    result = subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", str(source)],
        capture_output=True,
        text=True,
        timeout=240,
        env=_outside_env(),
    )
    assert result.returncode == 0, result.stderr
    print(f"pip install --no-deps . took {time.monotonic() - started:.1f} s")
    return python


def _site_packages(python: Path) -> str:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def _outside_env(**extra: str) -> dict[str, str]:
    """The environment without anything pointing at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODEL_PATH")}
    return {**env, **extra}


def _run(python: Path, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=_outside_env(**env),
    )


def _block_after(page: str, heading: str, language: str) -> str:
    """The first fenced ``language`` block under ``heading`` in ``page`` (a path from REPO)."""
    text = (REPO / page).read_text()
    section = text.split(f"\n{heading}\n", 1)[1]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_installed_package_is_not_the_checkout(installed, tmp_path):
    """The venv imports serving and convert from site-packages, with requirements.txt's
    dependencies declared and TensorFlow behind the ``convert`` extra."""
    code = "import serving, convert; print(serving.__file__); print(convert.__file__)"
    result = _run(installed, ["-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    files = result.stdout.split()
    assert all(Path(_site_packages(installed)) in Path(f).parents for f in files), files
    requires = _run(
        installed,
        ["-c", "import importlib.metadata as m; print(m.requires('tflite-cloud-function'))"],
        tmp_path,
    )
    declared = requires.stdout
    for path, marker in (("requirements.txt", ""), ("convert/requirements.txt", "; extra == ")):
        for line in (REPO / path).read_text().splitlines():
            if line and not line.startswith("#"):
                assert f"'{line}{marker}" in declared, (path, line)
    always = [r for r in ast.literal_eval(declared) if "extra ==" not in r]
    assert not [r for r in always if r.startswith("tensorflow")]  # only with [convert]


def test_the_python_api_snippet_runs_as_written_outside_the_checkout(
    installed, tmp_path, digits_model
):
    """docs/serving.md's "Python API" example, in a folder holding only the model."""
    snippet = _block_after("docs/serving.md", "## Python API", "python")
    (tmp_path / "model").mkdir()
    shutil.copy(digits_model, tmp_path / "model" / "quantized_model.tflite")
    (tmp_path / "example.py").write_text(snippet)
    result = _run(installed, ["example.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    shown = [line.split("# ", 1)[1] for line in snippet.splitlines() if "print(" in line]
    printed = [line for line in result.stdout.splitlines() if not line.startswith("{")]  # logs
    assert printed == shown


def test_python_m_serving_refuses_bad_arguments_in_one_line(installed, tmp_path):
    result = _run(installed, ["-m", "serving", "--port", "eighty"], tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "python -m serving: error: argument --port: invalid int value: 'eighty' (see --help)\n"
    )


@pytest.mark.needs_tensorflow
@pytest.mark.slow
def test_ones_own_model_in_the_readmes_commands_from_its_own_folder(installed, tmp_path):
    """README "Your own model": convert, then serve, from the model's folder."""
    pytest.importorskip("tensorflow")
    commands = _block_after("README.md", "## Your own model in three commands", "sh")
    convert = next(line for line in commands.splitlines() if line.startswith("python -m convert"))
    serve = next(line for line in commands.splitlines() if line.startswith("MODEL_PATH="))
    build = (
        "import numpy as np, keras\n"
        "keras.utils.set_random_seed(0)\n"
        "inputs = keras.Input((4,), name='features')\n"
        "outputs = keras.layers.Dense(3, activation='softmax', name='scores')(inputs)\n"
        "keras.Model(inputs, outputs).save('my_model.keras')\n"
        "np.save('samples.npy', np.random.default_rng(0).random((64, 4), np.float32))\n"
    )
    assert _run(Path(sys.executable), ["-c", build], tmp_path).returncode == 0

    words = shlex.split(convert.split("#", 1)[0])
    assert words[:3] == ["python", "-m", "convert"]
    converted = _run(installed, words[1:], tmp_path)
    assert converted.returncode == 0, converted.stderr
    assert (tmp_path / "my_model.tflite").is_file()

    assignment, *words = shlex.split(serve.split("#", 1)[0])
    name, value = assignment.split("=", 1)
    assert (name, words[:3]) == ("MODEL_PATH", ["python", "-m", "serving"])
    port = free_port()
    env = {name: value, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [installed, *words[1:]],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_outside_env(**env),
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        answer = _answer(f"{url}/v1/models/model:predict", {"instances": [[0.1, 0.2, 0.3, 0.4]]})
        assert answer.status_code == 200, answer.text
        (scores,) = answer.json()["predictions"]
        assert len(scores) == 3
        assert abs(sum(scores) - 1) < 0.05
        metadata = requests.get(f"{url}/v2/models/model", timeout=10).json()
        assert [t["name"] for t in metadata["inputs"]] == ["features"]
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        log.close()
    logged = (tmp_path / "server.log").read_text()
    assert re.search(rf'"model_path":"{re.escape(str(tmp_path / value))}"', logged), logged


def _answer(url: str, body: dict, *, deadline: float = 30.0) -> requests.Response:
    """POST ``body`` once the server listens (it was just started)."""
    stop = time.monotonic() + deadline
    while True:
        try:
            return requests.post(url, json=body, timeout=30)
        except requests.ConnectionError:
            if time.monotonic() > stop:
                raise
            time.sleep(0.1)
