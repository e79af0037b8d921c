"""Run the real gcloud (or deploy.sh calling it) with no credentials and no traffic off loopback.

Every gcloud run in these tests gets a fresh configuration directory, no project or account,
prompts, usage reporting and update checks off, and the GCE metadata server and the Google APIs
deploy.sh uses pointed at a closed loopback port. gcloud still probes the metadata server
(``metadata.google.internal``) for its user-agent string even with
``CLOUDSDK_CORE_CHECK_GCE_METADATA=false``, so the "not on GCE" answer is pre-seeded in the
configuration's cache file and ``GCE_METADATA_ROOT`` points at loopback. Where strace is
installed, each run is traced and any connect/send to a non-loopback address fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.server import free_port


def _working_strace() -> str | None:
    """strace, if installed and allowed to trace here (containers may forbid ptrace)."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    probe = subprocess.run([strace, "-f", "-o", os.devnull, "true"], capture_output=True)
    return strace if probe.returncode == 0 else None


GCLOUD = shutil.which("gcloud")
STRACE = _working_strace()
NO_GCLOUD_REASON = "gcloud CLI not installed (https://cloud.google.com/sdk/docs/install)"

# Variables that would lend gcloud an identity, a project or a route off this machine.
_DROPPED_PREFIXES = ("CLOUDSDK_", "GOOGLE_", "GCE_", "DEPLOY_", "BOTO_")
_DROPPED = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}
# APIs the generated commands talk to; each is pointed at a closed loopback port.
_APIS = (
    "CLOUDFUNCTIONS",
    "RUN",
    "CLOUDSCHEDULER",
    "STORAGE",
    "IAMCREDENTIALS",
    "CLOUDRESOURCEMANAGER",
    "SERVICEUSAGE",
    "CLOUDBUILD",
    "ARTIFACTREGISTRY",
)
_INET_ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6?, "([^"]+)"')

NO_CREDENTIALS = "You do not currently have an active account selected"


def offline_env(config_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a gcloud that has no credentials and cannot leave loopback."""
    config_dir.mkdir(parents=True, exist_ok=True)
    # gcloud's on-GCE cache: "False" means it does not probe the metadata server again.
    (config_dir / "gce").write_text("False")
    closed = f"127.0.0.1:{free_port()}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_DROPPED_PREFIXES) and key not in _DROPPED
    }
    env.update(
        {
            "CLOUDSDK_CONFIG": str(config_dir),
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "GCE_METADATA_ROOT": closed,
            "GCE_METADATA_HOST": closed,
            "GCE_METADATA_IP": closed,
            "NO_COLOR": "1",
        }
    )
    for api in _APIS:
        env[f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}"] = f"http://{closed}/"
    env.update(extra or {})
    return env


def off_loopback(trace: str) -> list[str]:
    """Non-loopback addresses a strace log shows the traced processes connecting or sending to."""
    found = []
    for line in trace.splitlines():
        if not re.search(r"\b(connect|sendto|sendmsg|sendmmsg)\(", line):
            continue
        for v4, v6 in _INET_ADDRESS.findall(line):
            address = v4 or v6
            if not (address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")):
                found.append(line.strip())
    return found


def run_offline(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (gcloud, or a script that calls it) in an offline environment.

    ``env`` adds to or overrides :func:`offline_env`. Under strace (when installed) the run
    fails the calling test if anything connects or sends to a non-loopback address.
    """
    with tempfile.TemporaryDirectory(prefix="gcloud-offline-") as tmp:
        full_env = offline_env(Path(tmp) / "config", env)
        command = list(argv)
        trace_path = Path(tmp) / "strace.log"
        if STRACE:
            command = [STRACE, "-f", "-qq", "-e", "trace=network", "-o", str(trace_path), *command]
        result = subprocess.run(
            command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
        )
        if STRACE:
            leaks = off_loopback(trace_path.read_text(errors="replace"))
            assert not leaks, f"{argv[0]} sent traffic off loopback:\n" + "\n".join(leaks)
    return result
