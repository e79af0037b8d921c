"""A stand-in ``gcloud`` for the steps that would reach Google Cloud (the cloud boundary).

:func:`install` writes an executable ``gcloud`` into a directory; put that directory first on
PATH. Each call appends its argv as one JSON line to ``calls.jsonl``. It answers like the real
CLI where deploy.sh depends on the answer: ``functions describe`` prints the function URL;
``scheduler jobs describe`` succeeds once ``scheduler jobs create`` has made the job and
otherwise fails with NOT_FOUND (or with PERMISSION_DENIED when ``FAKE_GCLOUD_DENY`` is set);
``config get-value project`` prints ``FAKE_GCLOUD_PROJECT``. With ``FAKE_GCLOUD_KEEP_SOURCE``
set, ``functions deploy`` copies its ``--source`` folder to ``source/`` beside the call log
(what would have been uploaded, before deploy.sh removes a staged folder). ``storage ls``
prints ``FAKE_GCLOUD_LS`` (the lines of ``gcloud storage ls -l``), or fails as the real one
does when nothing matches. With ``FAKE_GCLOUD_REAL_STORAGE`` (the real gcloud's path), every
``storage`` command is logged, then run by the real gcloud (e.g. against the storage emulator).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FUNCTION_URL = "https://tflite-predict-abc123-uc.a.run.app"

_SCRIPT = """\
#!{python}
import json, os, sys
from pathlib import Path

state = Path({state!r})
args = sys.argv[1:]
with (state / "calls.jsonl").open("a") as log:
    log.write(json.dumps(args) + "\\n")
words = [a for a in args if not a.startswith("--")]
if words[:2] == ["config", "get-value"]:
    print(os.environ.get("FAKE_GCLOUD_PROJECT", ""))
elif words[:2] == ["functions", "deploy"] and os.environ.get("FAKE_GCLOUD_KEEP_SOURCE"):
    import shutil
    (source,) = [a.split("=", 1)[1] for a in args if a.startswith("--source=")]
    shutil.copytree(source, state / "source", ignore=shutil.ignore_patterns(".git"))
elif words[0] == "storage" and os.environ.get("FAKE_GCLOUD_REAL_STORAGE"):
    real = os.environ["FAKE_GCLOUD_REAL_STORAGE"]
    os.execv(real, [real, *args])
elif words[:2] == ["storage", "ls"]:
    if not os.environ.get("FAKE_GCLOUD_LS"):
        sys.exit("ERROR: (gcloud.storage.ls) One or more URLs matched no objects.")
    print(os.environ["FAKE_GCLOUD_LS"])
elif words[:2] == ["functions", "describe"]:
    print({url!r})
elif words[:3] == ["scheduler", "jobs", "describe"]:
    if os.environ.get("FAKE_GCLOUD_DENY"):
        sys.exit("ERROR: (gcloud.scheduler.jobs.describe) PERMISSION_DENIED: denied")
    if not (state / ("job-" + words[3])).exists():
        sys.exit("ERROR: (gcloud.scheduler.jobs.describe) NOT_FOUND: Job not found.")
    print("projects/p/locations/l/jobs/" + words[3])
elif words[:4] == ["scheduler", "jobs", "create", "http"]:
    (state / ("job-" + words[4])).touch()
"""


def install(directory: Path) -> Path:
    """Write the fake ``gcloud`` into ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "gcloud"
    script.write_text(_SCRIPT.format(python=sys.executable, state=str(directory), url=FUNCTION_URL))
    script.chmod(0o755)
    return script


def calls(directory: Path) -> list[list[str]]:
    """Every argv the fake ``gcloud`` in ``directory`` has received, in order."""
    log = directory / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def install_failing(directory: Path, message: str, status: int) -> Path:
    """Write a ``gcloud`` into ``directory`` that prints ``message`` and exits ``status``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "gcloud"
    script.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit {status}\n")
    script.chmod(0o755)
    return script
