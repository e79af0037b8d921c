"""``python -m bench``: measure the function against the usual alternatives, side by side.

Builds (once, cached under ``build/bench/``) the MobileNetV2-sized models and SavedModels,
then measures cold start, warm latency, memory, throughput, in-process overhead,
quantization modes and the deployed footprint; prints the tables and writes
``results.md``, ``results.json`` and ``results.png``.

- ``python -m bench`` (``make bench``): the full run, into ``bench/`` (the published
  results); about 3-4 minutes on 2 cores, plus about a minute the first time (models).
- ``python -m bench --quick`` (``make bench-quick``): every measurement with fewer repeats
  and a small MobileNetV2 stand-in, into ``build/bench/quick/`` (never the published
  results); under 2 minutes. Its figures only show that the benchmark works.

``--out DIR`` writes elsewhere. Everything runs on 127.0.0.1; every server is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from bench import chart, deployed, footprint, report, servers, suite, targets
from bench.plan import FULL, QUICK, Plan

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "model" / "quantized_model.tflite"


def build_models(plan: Plan) -> tuple[Path, dict]:
    """Run ``bench.models`` in its own process (TensorFlow stays out of this one)."""
    from bench.models import cache_dir

    with tempfile.TemporaryFile() as log:
        result = subprocess.run(
            [sys.executable, "-m", "bench.models", "--variant", plan.variant],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-3000:]
            sys.exit(f"building the benchmark models failed:\n{tail}")
    return cache_dir(plan.variant), json.loads(result.stdout)


def machine() -> dict:
    """What the figures were measured on."""
    from serving.model.backend import select_backend

    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cpus = len(os.sched_getaffinity(0))
    backend = select_backend()
    return {
        "description": f"{cpus} CPUs ({model}), Python {platform.python_version()}, "
        f"{backend.name} {backend.version}",
        "cpus": cpus,
        "python": platform.python_version(),
        "backend": f"{backend.name} {backend.version}",
        "tensorflow": footprint.tensorflow_installed().detail,
        "functions_framework": metadata.version("functions-framework"),
        "function_python": str(servers.runtime_python().relative_to(REPO))
        if servers.runtime_python().is_relative_to(REPO)
        else str(servers.runtime_python()),
        "gunicorn_threads": servers.GUNICORN_THREADS,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _write(path: Path, data: bytes) -> None:
    """Write whole or not at all (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    """Parse the options, measure everything, print and write the results."""
    servers.stop_on_sigterm()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the function against Flask + TensorFlow and load-per-request, "
        "side by side; print the tables, write results.md/.json/.png.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, small MobileNetV2")
    parser.add_argument(
        "--out", type=Path, help="output directory (default: bench/, or build/bench/quick/)"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    out = args.out or (REPO / "build" / "bench" / "quick" if args.quick else REPO / "bench")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict = {"command": "python -m bench" + (" --quick" if args.quick else "")}
    results["machine"] = machine()
    results["plan"] = asdict(plan)

    print(f"building models ({plan.variant}, cached under build/bench/)", file=sys.stderr)
    build_dir, manifest = build_models(plan)
    results["mobilenet"] = manifest["mobilenet"]["description"]
    deployed_env, results["machine"]["deployed"] = deployed.settings(results["machine"]["cpus"])
    results.update(suite.run(plan, build_dir, manifest, BUNDLED, deployed_env))
    print("deployed footprint", file=sys.stderr)
    results["footprint"] = footprint.measure()
    results["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    checked = targets.evaluate(results)
    results["targets"] = [{**asdict(t), "verdict": t.verdict} for t in checked]
    text = report.markdown(results, checked)
    _write(out / "results.json", (json.dumps(results, indent=2) + "\n").encode())
    _write(out / "results.md", text.encode())
    png = out / "results.png"
    chart.write(results, png.with_name(".results.png.tmp.png"))
    png.with_name(".results.png.tmp.png").replace(png)
    print(text)
    print(f"wrote {out / 'results.md'}, results.json, results.png in {results['seconds']} s",
          file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
