"""The function's settings as ``deploy.sh`` deploys it on an instance with this many CPUs.

``deploy.sh --dry-run --cpu N`` prints the ``gcloud functions deploy`` command without
running anything; its ``--set-env-vars`` (gunicorn WORKERS and THREADS, interpreter pool
size and threads) are what the benchmark gives the function's servers, so "as deployed"
stays whatever deploy.sh decides. It runs with no credentials and every Google endpoint
pointed at a closed loopback port (the deploy tests' offline environment).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Settings that describe where the model comes from are the benchmark's own choice.
_NOT_TAKEN = frozenset({"MODEL_PATH", "MODEL_NAME", "MODEL_VERSION"})


def settings(cpus: int, memory: str | None = None) -> tuple[dict[str, str], str]:
    """(environment variables deploy.sh sets for ``--cpu cpus`` [``--memory memory``], how
    they were obtained).

    Falls back to functions-framework's defaults (no variables) with the reason when
    deploy.sh is missing or refuses; the reason then appears in the results.
    """
    from tests.deploy.offline_gcloud import offline_env

    script = REPO / "deploy.sh"
    if not script.is_file():
        return {}, "no deploy.sh: functions-framework defaults"
    argv = [str(script), "--dry-run", "--cpu", str(cpus)]
    argv += ["--memory", memory] if memory else []
    argv += ["--project", "bench-dry-run", "--region", "us-central1"]
    with tempfile.TemporaryDirectory(prefix="deploy-dry-run-") as tmp:
        result = subprocess.run(
            argv,
            cwd=REPO,
            env=offline_env(Path(tmp) / "config"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    flags = [f for f in result.stdout.split() if f.startswith("--set-env-vars=")]
    if result.returncode != 0 or not flags:
        reason = (result.stderr.strip().splitlines() or ["no --set-env-vars"])[-1]
        return {}, f"deploy.sh --dry-run failed ({reason[:160]}): functions-framework defaults"
    pairs = (item.split("=", 1) for item in flags[0].split("=", 1)[1].split(","))
    env = {key: value for key, value in pairs if key not in _NOT_TAKEN}
    shown = " ".join(f"{k}={v}" for k, v in env.items())
    flags_text = f"--cpu {cpus}" + (f" --memory {memory}" if memory else "")
    return env, f"as deploy.sh {flags_text} sets it: {shown}"
