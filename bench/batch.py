"""``python -m bench.batch`` (``make bench-batch``): batch prediction on DirectRunner.

Run from the batch environment (``.venv-batch``: Beam, no TensorFlow); the MobileNetV2
model is built by ``bench.models`` in ``MODEL_BUILDER_PYTHON`` (the dev environment).
Every run is the real command, ``python -m batch``, in a new process, timed from start
to exit; each size runs ``--repeats`` times, the sizes taking turns, and the median counts.

- rows: the bundled model over JSONL of 500 and 5,000 rows (8x8x1 numbers each). The
  cost of one more row is ``(t(5000) - t(500)) / 4500``: start-up (Python, Beam, the
  model loaded twice: the launcher's check and the worker's) cancels out. Target <= 0.5 ms.
- pictures: MobileNetV2 int8 with metadata (224x224 RGB, normalisation and labels) over
  1,000 and 20 JPEGs of 224x224. Steady throughput is ``980 / (t(1000) - t(20))``; the
  machine's bare-invoke capacity is ``cores / invoke`` (one interpreter, one thread, batch
  of one, median); the share is their ratio, target >= 60%. Start-up is ``t(20)`` less the
  20 pictures' share of the steady time.

Writes ``build/bench/batch/results.json`` and prints the figures with the load average
before and after and the cores other processes used during the 1,000-picture runs (from
``/proc/stat``): on a shared machine they take cores the share counts on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "model" / "quantized_model.tflite"
OUT = REPO / "build" / "bench" / "batch"
ROWS = (500, 5000)
PICTURES = (20, 1000)
ROW_TARGET_MS = 0.5
SHARE_TARGET = 0.60


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _busy_seconds() -> float:
    """CPU seconds every process of the machine has used since boot (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    """One run: wall seconds, its CPU seconds, and the cores other processes used meanwhile."""

    seconds: float
    cpu: float
    others: float


def timed_run(model: Path, pattern: str, out: Path) -> Run:
    """One ``python -m batch`` from start to exit (it must succeed)."""
    command = [sys.executable, "-m", "batch", "--model", str(model), "--input", pattern]
    before, busy = resource.getrusage(resource.RUSAGE_CHILDREN), _busy_seconds()
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "--output", str(out)], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    seconds = time.perf_counter() - started
    after, busy = resource.getrusage(resource.RUSAGE_CHILDREN), _busy_seconds() - busy
    if result.returncode != 0:
        sys.exit(f"python -m batch failed:\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(seconds, cpu, max(0.0, busy - cpu) / seconds)


def median_runs(model: Path, patterns: dict[int, str], work: Path, repeats: int) -> dict[int, Run]:
    """The median (each field) of ``repeats`` runs per size, the sizes taking turns so that a
    change in the machine's load weighs on both; each run writes a new output folder."""
    runs: dict[int, list[Run]] = {count: [] for count in patterns}
    for _ in range(repeats):
        for count, pattern in patterns.items():
            out = Path(tempfile.mkdtemp(prefix="out-", dir=work))
            runs[count].append(timed_run(model, pattern, out))
    return {
        count: Run(
            *(statistics.median(getattr(r, f) for r in found) for f in Run.__dataclass_fields__)
        )
        for count, found in runs.items()
    }


def rows(work: Path, repeats: int) -> dict:
    """The bundled model over JSONL rows: the cost of one more row."""
    rng = np.random.default_rng(0)
    patterns = {}
    for count in ROWS:
        path = work / f"rows-{count}.jsonl"
        with path.open("w") as f:
            for row in rng.random((count, 8, 8, 1)).round(4):
                f.write(json.dumps(row.tolist()) + "\n")
        patterns[count] = str(path)
    seconds = {k: run.seconds for k, run in median_runs(BUNDLED, patterns, work, repeats).items()}
    small, large = ROWS
    per_row_ms = (seconds[large] - seconds[small]) * 1000 / (large - small)
    return {
        "seconds": {str(k): round(v, 3) for k, v in seconds.items()},
        "per_row_ms": round(per_row_ms, 4),
        "target_ms": ROW_TARGET_MS,
        "met": per_row_ms <= ROW_TARGET_MS,
    }


def build_mobilenet() -> Path:
    """The MobileNetV2 int8 picture model, built (or found cached) by ``bench.models``."""
    python = os.environ.get("MODEL_BUILDER_PYTHON")
    if not python:
        sys.exit(
            "MODEL_BUILDER_PYTHON must name a Python with TensorFlow (make bench-batch sets it)"
        )
    result = subprocess.run(
        [python, "-m", "bench.models", "--variant", "full"],
        cwd=REPO, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"building the benchmark models failed:\n{result.stderr[-3000:]}")
    from bench.models import cache_dir

    return cache_dir("full") / "mobilenet-int8-pictures.tflite"


def invoke_ms(model: Path, count: int) -> float:
    """Median bare ``invoke()`` of one 224x224 picture: one interpreter, one thread."""
    from bench.latency import bare_interpreter, median_ms

    x = np.random.default_rng(1).uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)
    interpreter = bare_interpreter(str(model), x)
    return median_ms(interpreter.invoke, count)


def pictures(work: Path, repeats: int, invokes: int) -> dict:
    """MobileNetV2 int8 over JPEG files against the machine's bare-invoke capacity."""
    from bench.images import jpeg

    model = build_mobilenet()
    patterns = {}
    picture = jpeg(224)
    for count in PICTURES:
        folder = work / f"pictures-{count}"
        folder.mkdir()
        for i in range(count):
            (folder / f"{i:05d}.jpg").write_bytes(picture)
        patterns[count] = str(folder / "*.jpg")
    runs = median_runs(model, patterns, work, repeats)
    seconds = {k: run.seconds for k, run in runs.items()}
    cpu = {k: run.cpu for k, run in runs.items()}
    others = {k: run.others for k, run in runs.items()}
    small, large = PICTURES
    per_second = (large - small) / (seconds[large] - seconds[small])
    # CPU time the pipeline spends on one more picture: with every core free to it, the
    # share could reach invoke / that (a bound the load of a shared machine hides).
    cpu_ms = (cpu[large] - cpu[small]) * 1000 / (large - small)
    bare_ms = invoke_ms(model, invokes)
    cores = len(os.sched_getaffinity(0))
    capacity = cores * 1000 / bare_ms
    share = per_second / capacity
    return {
        "seconds": {str(k): round(v, 3) for k, v in seconds.items()},
        "pictures_per_second": round(per_second, 1),
        "invoke_ms": round(bare_ms, 2),
        "cores": cores,
        "capacity_per_second": round(capacity, 1),
        "share": round(share, 3),
        "cpu_ms_per_picture": round(cpu_ms, 2),
        "share_bound_from_cpu": round(bare_ms / cpu_ms, 3),
        "other_processes_cores": round(others[large], 2),
        # The same share against the cores the other processes left (a derived figure).
        "share_of_free_cores": round(
            per_second / (max(cores - others[large], 0.1) * 1000 / bare_ms), 3
        ),
        "startup_seconds": round(seconds[small] - small / per_second, 2),
        "target_share": SHARE_TARGET,
        "met": share >= SHARE_TARGET,
    }


def machine() -> dict:
    """What the figures were measured on."""
    from serving.model.backend import select_backend

    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as cpuinfo:
        found = next((line for line in cpuinfo if line.startswith("model name")), None)
    if found:
        model = found.split(":", 1)[1].strip()
    backend = select_backend()
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "backend": f"{backend.name} {backend.version}",
    }


def report(results: dict) -> str:
    """The figures as lines of text, misses named."""
    r, p = results["rows"], results["pictures"]
    verdict = {True: "met", False: "MISSED"}
    m = results["machine"]
    return "\n".join(
        [
            f"batch on DirectRunner, {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, "
            f"{m['backend']}; load average {results['load_before']} before, "
            f"{results['load_after']} after",
            f"rows (bundled model): {r['seconds']['500']} s for 500, {r['seconds']['5000']} s "
            f"for 5000: {r['per_row_ms']} ms per row (target <= {r['target_ms']} ms: "
            f"{verdict[r['met']]})",
            f"pictures (MobileNetV2 int8, 224x224 JPEG): {p['seconds']['20']} s for 20, "
            f"{p['seconds']['1000']} s for 1000: {p['pictures_per_second']} pictures/s; bare "
            f"invoke {p['invoke_ms']} ms x {p['cores']} cores = {p['capacity_per_second']}/s; "
            f"share {p['share']:.0%} (target >= {p['target_share']:.0%}: {verdict[p['met']]}); "
            f"start-up {p['startup_seconds']} s; CPU {p['cpu_ms_per_picture']} ms per picture "
            f"(invoke / CPU = {p['share_bound_from_cpu']:.0%}); other processes used "
            f"{p['other_processes_cores']} cores during the 1000-picture runs (share of the "
            f"cores left: {p['share_of_free_cores']:.0%})",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="runs per size (median)")
    parser.add_argument("--out", type=Path, default=OUT)
    options = parser.parse_args(argv)
    results: dict = {"machine": machine(), "load_before": _load()}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as work:
        results["rows"] = rows(Path(work), options.repeats)
        results["pictures"] = pictures(Path(work), options.repeats, invokes=200)
    results["load_after"] = _load()
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(report(results))


if __name__ == "__main__":
    main()
