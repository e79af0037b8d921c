"""docs/repository.md's "Try it" section, run: its setup commands build the repository,
the real server serves it, and every ``$ curl`` answers exactly what the page shows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.server import running_server

PAGE = REPO / "docs" / "repository.md"
START = "MODEL_REPOSITORY=models functions-framework --target predict --port 8080"


def _section(text: str, title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert found, f"{PAGE.name} has no '## {title}' section"
    return found.group(1)


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", section, re.S | re.M)


def _examples(section: str) -> list[tuple[str, str]]:
    """Each ``$ command`` of the console blocks and the one answer line below it."""
    pairs = []
    for block in _blocks(section, "console"):
        lines = block.splitlines()
        assert len(lines) % 2 == 0, block
        for command, answer in zip(lines[::2], lines[1::2], strict=True):
            assert command.startswith("$ curl -s "), command
            assert "localhost:8080/" in command, command  # loopback only: the test's server
            pairs.append((command.removeprefix("$ "), answer))
    return pairs


@pytest.mark.skipif(shutil.which("curl") is None, reason="the page's examples use curl")
def test_the_try_it_section_answers_as_written(tmp_path: Path):
    section = _section(PAGE.read_text(), "Try it")
    (setup,) = _blocks(section, "sh")
    *commands, start = setup.strip().splitlines()
    assert start == START
    (tmp_path / "model").symlink_to(REPO / "model")  # the commands run from a checkout
    subprocess.run(["bash", "-euc", "\n".join(commands)], cwd=tmp_path, check=True, timeout=30)
    examples = _examples(section)
    assert len(examples) == 10
    with running_server(MODEL_REPOSITORY=str(tmp_path / "models")) as server:
        host = server.url.removeprefix("http://")
        for command, answer in examples:
            ran = subprocess.run(
                ["bash", "-c", command.replace("localhost:8080", host)],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert ran.returncode == 0, (command, ran.stderr)
            assert json.loads(ran.stdout) == json.loads(answer), (command, ran.stdout)
