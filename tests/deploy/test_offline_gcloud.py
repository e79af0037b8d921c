"""The guard around gcloud: off-loopback traffic is seen; a real gcloud run stays on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.offline_gcloud import (
    GCLOUD,
    NO_CREDENTIALS,
    NO_GCLOUD_REASON,
    STRACE,
    off_loopback,
    offline_env,
)

# strace lines as gcloud produces them without the guard (a DNS query for the metadata server).


def _v4(port: int, address: str) -> str:
    return (
        f"7  connect(5, {{sa_family=AF_INET, sin_port=htons({port}), "
        f'sin_addr=inet_addr("{address}")}}, 16) = 0'
    )


def _v6(call: str, address: str) -> str:
    return (
        f"7  {call}(4, {{sa_family=AF_INET6, sin6_port=htons(0), "
        f'inet_pton(AF_INET6, "{address}", &sin6_addr)}}, 28) = 0'
    )


LEAK = _v4(53, "10.0.0.53")
METADATA = _v4(80, "169.254.169.254")
LOOPBACK = _v4(9, "127.0.0.1")
V6 = _v6("connect", "2a00:1450::1")
BIND_V6 = _v6("bind", "::1")


def test_off_loopback_flags_remote_addresses() -> None:
    trace = "\n".join([LEAK, METADATA, LOOPBACK, V6, BIND_V6])
    assert off_loopback(trace) == [LEAK, METADATA, V6]


@pytest.mark.skipif(GCLOUD is None, reason=NO_GCLOUD_REASON)
@pytest.mark.skipif(STRACE is None, reason="strace missing or not permitted: sockets unwatched")
def test_gcloud_deploy_without_credentials_stays_on_loopback(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "main.py").write_text("")
    trace = tmp_path / "trace.log"
    command = [GCLOUD, "functions", "deploy", "fn", "--gen2", "--project=demo-project-1"]
    command += ["--region=us-central1", f"--source={source}", "--trigger-http"]
    result = subprocess.run(
        [STRACE, "-f", "-qq", "-e", "trace=network", "-o", str(trace), *command],
        env=offline_env(tmp_path / "config"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = trace.read_text()
    assert "socket(" in log, "strace recorded nothing"
    assert off_loopback(log) == []
    assert NO_CREDENTIALS in result.stderr
