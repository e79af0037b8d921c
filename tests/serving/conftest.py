"""Fixtures for driving the function in-process through functions-framework's Flask app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import functions_framework
import pytest
from flask.testing import FlaskClient

from serving.http import app
from serving.runtime import Runtime
from serving.settings import Settings
from tests import contract
from tests.conftest import REPO


@pytest.fixture
def client_for(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FlaskClient]:
    """``client_for(model_path, **env)``: a test client of the real function app.

    The app is functions-framework's own (same routing as the server); the process-wide
    runtime is replaced by a fresh one reading the patched environment. Every exchange is
    checked against /openapi.json (:mod:`tests.contract`).
    """

    def make(model_path: Path | str, **env: str) -> FlaskClient:
        monkeypatch.setenv("MODEL_PATH", str(model_path))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(app, "RUNTIME", Runtime(Settings.from_env()))
        flask_app = functions_framework.create_app("predict", str(REPO / "main.py"), "http")
        flask_app.wsgi_app = contract.checking(flask_app.wsgi_app)
        return flask_app.test_client()

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how much of the traffic /openapi.json was checked against (tests/contract.py)."""
    if contract.CHECKED:
        counts = ", ".join(f"{n} {what}" for what, n in contract.CHECKED.items())
        terminalreporter.write_line(f"/openapi.json checked: {counts}")
