"""docs/deploy.md's examples are what deploy.sh answers: every ``$ ...`` block is run.

Each block is a command and its exact output (stderr, then stdout), run from a folder holding
the files the examples name: ``my_model.tflite`` (a copy of the bundled model),
``my_model.keras`` and a ``models/`` repository with a broken ``models.json``. The checkout's
path is written ``/home/me/tflite-serving`` in the page, and the upload's file count and bytes,
which follow the serving package, are compared as numbers of any value.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from tests.deploy.deploy_script import BASH, DEPLOY, REPO
from tests.deploy.offline_gcloud import run_offline

PAGE = REPO / "docs" / "deploy.md"
CHECKOUT = "/home/me/tflite-serving"
_BLOCK = re.compile(r"^```\n\$ (.*?)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_UPLOAD_NUMBERS = re.compile(r"^(# upload: )\d+ files, \d+ bytes", re.MULTILINE)


def examples() -> list[tuple[str, str]]:
    """(command, expected output) of every ``$ `` block on the page."""
    return _BLOCK.findall(PAGE.read_text())


def normalised(text: str) -> str:
    return _UPLOAD_NUMBERS.sub(r"\1N files, N bytes", text.replace(str(REPO), CHECKOUT))


def user_folder(tmp_path: Path) -> Path:
    """A user's folder with the files the examples name."""
    shutil.copyfile(REPO / "model" / "quantized_model.tflite", tmp_path / "my_model.tflite")
    (tmp_path / "my_model.keras").write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    version = tmp_path / "models" / "digits" / "1" / "model.tflite"
    version.parent.mkdir(parents=True)
    shutil.copyfile(REPO / "model" / "quantized_model.tflite", version)
    (tmp_path / "models" / "models.json").write_text(
        '{"models": {"digits": {"versions": [1], "labels": {"stable": 2}}}}'
    )
    return tmp_path


def test_the_page_has_examples() -> None:
    commands = [command for command, _ in examples()]
    assert len(commands) == 3, commands
    assert any(
        "--dry-run" in command and "--model my_model.tflite" in command for command in commands
    )


@pytest.mark.parametrize(("command", "expected"), examples(), ids=lambda v: v[:60])
def test_each_example_is_what_deploy_sh_answers(
    tmp_path: Path, command: str, expected: str
) -> None:
    argv = shlex.split(command)
    assert argv[0] in ("./deploy.sh", f"{CHECKOUT}/deploy.sh"), argv[0]
    result = run_offline([BASH, str(DEPLOY), *argv[1:]], cwd=user_folder(tmp_path))
    refused = result.returncode == 2
    assert result.returncode in (0, 2), result.stderr
    # A refusal is one line on stderr and nothing on stdout; a dry run prints both.
    assert refused == (not expected.startswith("# "))
    assert normalised(result.stderr + result.stdout) == normalised(expected)
