"""``python -m bench.repository``: a model repository against single-model mode, on loopback.

Measured, with the settings ``deploy.sh --cpu 1 --memory 1Gi`` gives the function:

- **cold start** (spawn to the first ``200`` predict answer, as ``bench.servers`` times it)
  of a 10-model repository (``m0`` .. ``m9``, each version 1 a copy of one model; the first
  request names ``m0``) against single-model mode serving that model, started alternately;
  for the bundled digits model and for MobileNetV2 int8 (the compiled engine). Target: the
  repository's median at most 10% over single mode's.
- **round-robin over four distinct models** (``bench.repository_models``), ``r0`` .. ``r3``
  called in turn: once under 1 GiB, where all four stay loaded, and once with
  ``MEMORY_LIMIT_BYTES`` set so that one worker's share of the instance holds two and a
  half of the largest measured footprint, so that every request of the round loads its
  version and unloads the least recently used. Per setting: every answer's status, latency
  (p50, p95), the loads and unloads the log lines name, and unreclaimable memory (anonymous
  PSS of the process tree plus what was written to the temp dir, a tmpfs), at peak. Target:
  the peak stays within the limit.

``--quick`` (smaller models, fewer starts and rounds; into ``build/bench/quick/``) only shows
that the benchmark works. ``--out DIR`` writes elsewhere. Every server is on 127.0.0.1 and
is stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench import deployed, latency, memory, servers
from bench.__main__ import BUNDLED, REPO, _write, build_models, machine, plan_and_out
from bench.plan import Plan
from bench.report import _table, targets_table
from bench.targets import Target
from bench.weights import TMPFS, rows_body, unreclaimable

MB = 1e6
COPIES = 10  # models in the cold-start repository
COLD_RATIO = 1.10  # the repository's cold start at most this times single mode's
SHARE_OF_LARGEST = 2.5  # the tight limit's per-worker share, in largest footprints
MEMORY = "1Gi"


def rounds(plan: Plan) -> int:
    """Times the four models are called in turn, per setting."""
    return 6 if plan.name == "full" else 2


def _repository(root: Path, files: dict[str, Path]) -> Path:
    """``root/<name>/1/model.tflite`` for each name (copies: as they would be uploaded)."""
    for name, file in files.items():
        (root / name / "1").mkdir(parents=True)
        shutil.copyfile(file, root / name / "1" / "model.tflite")
    return root


def _spec(name: str, body: bytes, env: dict[str, str], *, model: str = "", repository: str = ""):
    """The function serving one model (``model``) or a repository, first request ``m0``'s."""
    extra = {"MODEL_REPOSITORY": repository} if repository else {}
    spec = servers.function_spec(name, model, body, **env, **extra)
    return dataclasses.replace(spec, predict_path="/v1/models/m0:predict") if repository else spec


def cold_starts(label: str, model: Path, body: bytes, plan: Plan, log_dir: Path) -> dict:
    """Single mode against a ``COPIES``-model repository of ``model``, started alternately."""
    env, how = deployed.settings(1, MEMORY)
    root = _repository(
        Path(tempfile.mkdtemp(prefix="bench-repo-", dir=log_dir)),
        {f"m{i}": model for i in range(COPIES)},
    )
    times: dict[str, list[float]] = {"single": [], "repository": []}
    for i in range(plan.cold_starts):
        for key in times:
            temp_dir = Path(tempfile.mkdtemp(prefix="bench-tmp-", dir=TMPFS))
            run_env = {**env, "TMPDIR": str(temp_dir)}
            spec = (
                _spec(f"cold-{key}-{i}", body, run_env, model=str(model))
                if key == "single"
                else _spec(f"cold-{key}-{i}", body, run_env, repository=str(root))
            )
            try:
                with servers.start(spec, log_dir) as server:
                    times[key].append(server.cold_start_s)
            finally:
                shutil.rmtree(temp_dir, ignore_errors=True)
    medians = {key: statistics.median(values) for key, values in times.items()}
    return {
        "label": label,
        "model_bytes": model.stat().st_size,
        "settings": how,
        "cold_start_s": times,
        "median_s": medians,
        "ratio": medians["repository"] / medians["single"],
    }


def round_robin(
    files: list[Path], body: bytes, plan: Plan, log_dir: Path, limit: int | None
) -> dict:
    """Call ``r0`` .. ``r3`` in turn for ``rounds(plan)`` rounds; ``limit`` overrides the
    deployed ``MEMORY_LIMIT_BYTES``."""
    env, how = deployed.settings(1, MEMORY)
    if limit is not None:
        env = {**env, "MEMORY_LIMIT_BYTES": str(limit)}
    names = [f"r{i}" for i in range(len(files))]
    folder = Path(tempfile.mkdtemp(prefix="bench-repo-", dir=log_dir))
    root = _repository(folder, dict(zip(names, files, strict=True)))
    temp_dir = Path(tempfile.mkdtemp(prefix="bench-tmp-", dir=TMPFS))
    spec = dataclasses.replace(
        _spec("round-robin", body, {**env, "TMPDIR": str(temp_dir)}, repository=str(root)),
        predict_path="/v1/models/r0:predict",
    )
    statuses: list[int] = []
    times: list[float] = []
    try:
        measure = functools.partial(unreclaimable, temp_dir=temp_dir)
        sampler = memory.PeakSampler(0.02, measure)
        with sampler, servers.start(spec, log_dir, on_spawn=sampler.watch) as server:
            client = latency.Client(server.port)
            try:
                for _ in range(rounds(plan)):
                    for name in names:
                        try:
                            times.append(client.post(f"/v1/models/{name}:predict", body))
                            statuses.append(200)
                        except latency.NotOk as e:  # a non-200 answer: kept, not hidden
                            statuses.append(e.status)
            finally:
                client.close()
            steady = unreclaimable(server.pid, temp_dir)
            logs = server.logs()
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    loads = servers.log_entries(logs, "model version loaded")
    return {
        "settings": how + (f"; MEMORY_LIMIT_BYTES={limit}" if limit is not None else ""),
        "limit_bytes": limit,
        "requests": len(statuses),
        "statuses": sorted(set(statuses)),
        "ok": statuses.count(200),
        "p50_ms": statistics.median(times) if times else None,
        "p95_ms": latency.percentile(times, 95) if times else None,
        "loads": len(loads),
        "unloads": len(servers.log_entries(logs, "model version unloaded")),
        "held_bytes": {e.get("model", "?"): e.get("held_bytes") for e in loads},  # the last
        "held_per_load_bytes": [e.get("held_bytes") for e in loads],
        "capacity_bytes": loads[0].get("capacity_bytes") if loads else None,
        "peak_bytes": max(sampler.peak, steady),
    }


def tight_limit(largest_held: int, env: dict[str, str]) -> int:
    """``MEMORY_LIMIT_BYTES`` whose one worker's models share (:func:`repository_shares`, with
    the deployed ``env``'s body limit) holds ``SHARE_OF_LARGEST`` of the largest footprint."""
    from serving.memory import repository_shares
    from serving.settings import Settings

    max_request = int(env.get("MAX_REQUEST_BYTES") or Settings.max_request_bytes)
    roomy = 1 << 30
    set_aside = roomy - (repository_shares(roomy, 1, max_request).models or 0)
    return int(SHARE_OF_LARGEST * largest_held) + set_aside


def build_repository_models(plan: Plan) -> tuple[list[Path], dict]:
    """``bench.repository_models`` in its own process (TensorFlow stays out of this one)."""
    from bench.repository_models import cache_dir

    result = subprocess.run(
        [sys.executable, "-m", "bench.repository_models", "--variant", plan.variant],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"building the repository models failed:\n{result.stderr[-3000:]}")
    manifest = json.loads(result.stdout)
    return [cache_dir(plan.variant) / name for name in manifest["files"]], manifest


def measure(plan: Plan, log_dir: Path) -> dict:
    """Every figure of this module (see its docstring)."""
    build_dir, manifest = build_models(plan)
    files, mlps = build_repository_models(plan)
    digits = json.dumps({"instances": [np.zeros((8, 8, 1)).tolist()]}).encode()
    shape = manifest["mobilenet"]["shape"]
    image = np.zeros(shape[1:], dtype=np.float32).tolist()
    mobilenet = build_dir / manifest["mobilenet"]["tflite"]["int8"]
    results: dict = {"cold": {}, "round_robin": {}, "models": mlps["description"]}
    for key, label, model, body in (
        ("bundled", "bundled digits model", BUNDLED, digits),
        ("mobilenet", "MobileNetV2 int8", mobilenet, json.dumps({"instances": [image]}).encode()),
    ):
        print(f"  cold start: {label}", file=sys.stderr, flush=True)
        results["cold"][key] = cold_starts(label, model, body, plan, log_dir)
    body = rows_body(mlps["width"])
    print("  round-robin, all fit", file=sys.stderr, flush=True)
    roomy = round_robin(files, body, plan, log_dir, None)
    results["round_robin"]["roomy"] = roomy
    largest = max(b for b in roomy["held_bytes"].values() if b)
    limit = tight_limit(largest, deployed.settings(1, MEMORY)[0])
    print(f"  round-robin, limit {limit / MB:.0f} MB", file=sys.stderr, flush=True)
    results["round_robin"]["tight"] = round_robin(files, body, plan, log_dir, limit)
    return results


def targets(results: dict) -> list[Target]:
    found = []
    for cold in results["cold"].values():
        m = cold["median_s"]
        found.append(
            Target(
                f"cold start, {COPIES}-model repository / single mode, {cold['label']}",
                f"<= {COLD_RATIO:.2f}x",
                f"{cold['ratio']:.3f}x ({m['repository']:.3f} s / {m['single']:.3f} s)",
                cold["ratio"] <= COLD_RATIO,
            )
        )
    for key, run in results["round_robin"].items():
        found.append(
            Target(
                f"round-robin ({key}): every answer 200",
                f"{run['requests']} of {run['requests']}",
                f"{run['ok']} of {run['requests']}",
                run["ok"] == run["requests"],
            )
        )
    tight = results["round_robin"]["tight"]
    found.append(
        Target(
            "round-robin (tight): peak unreclaimable memory within MEMORY_LIMIT_BYTES",
            f"<= {tight['limit_bytes'] / MB:.0f} MB",
            f"{tight['peak_bytes'] / MB:.0f} MB",
            tight["peak_bytes"] <= tight["limit_bytes"],
        )
    )
    return found


def markdown(results: dict, checked: list[Target]) -> str:
    m = results["machine"]
    cold_rows = [
        [
            c["label"],
            f"{c['model_bytes'] / MB:.2f} MB",
            f"{c['median_s']['single']:.3f} s",
            f"{c['median_s']['repository']:.3f} s",
            f"{c['ratio']:.3f}x",
            ", ".join(f"{s:.3f}" for s in c["cold_start_s"]["repository"]),
        ]
        for c in results["cold"].values()
    ]
    rr_rows = []
    for key, r in results["round_robin"].items():
        held = [b for b in r["held_per_load_bytes"] if b]
        rr_rows.append(
            [
                "1 GiB (all fit)" if key == "roomy" else f"{r['limit_bytes'] / MB:.0f} MB",
                f"{r['capacity_bytes'] / MB:.0f} MB" if r["capacity_bytes"] else "none",
                f"{r['ok']}/{r['requests']}",
                f"{r['p50_ms']:.1f} ms",
                f"{r['p95_ms']:.1f} ms",
                str(r["loads"]),
                str(r["unloads"]),
                f"{min(held) / MB:.1f}-{max(held) / MB:.1f} MB" if held else "",
                f"{r['peak_bytes'] / MB:.0f} MB",
            ]
        )
    first = next(iter(results["cold"].values()))
    return "\n".join(
        [
            "# The model repository: measured",
            "",
            f"`{results['command']}` on {m['description']}, load {m['load_before']} before and "
            f"{m['load_after']} after, {results['finished']}, {results['seconds']} s. "
            f"Settings {first['settings']}; temp dir on a tmpfs.",
            "",
            "## Targets",
            "",
            *targets_table(checked),
            "",
            f"## Cold start: a {COPIES}-model repository against single mode",
            "",
            f"Spawn to the first 200 predict answer; {results['plan']['cold_starts']} starts "
            "each, alternating; medians.",
            "",
            *_table(
                ["model", "file", "single", "repository", "ratio", "repository starts (s)"],
                cold_rows,
                "lrrrrl",
            ),
            "",
            f"## Round-robin over {results['models']}",
            "",
            f"{rounds_text(results)}; one request at a time; memory is unreclaimable memory "
            "(anonymous PSS of the process tree plus the temp dir), peak from the spawn; "
            "'held per load' is the footprint each load line names (the first load of a process "
            "also counts the runtime's one-time set-up). The tight limit leaves a worker "
            f"{SHARE_OF_LARGEST}x the largest footprint of the roomy run: LRU over four models "
            "called in turn then misses on every request, the worst case.",
            "",
            *_table(
                [
                    "limit",
                    "worker's share",
                    "200s",
                    "p50",
                    "p95",
                    "loads",
                    "unloads",
                    "held per load",
                    "peak memory",
                ],
                rr_rows,
                "lrrrrrrrr",
            ),
            "",
        ]
    )


def rounds_text(results: dict) -> str:
    r = next(iter(results["round_robin"].values()))
    return f"{r['requests'] // 4} rounds of r0, r1, r2, r3"


def main(argv: list[str] | None = None) -> None:
    servers.stop_on_sigterm()
    parser = argparse.ArgumentParser(prog="python -m bench.repository", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small models, fewer starts")
    parser.add_argument("--out", type=Path, help="output directory")
    args = parser.parse_args(argv)
    plan, out = plan_and_out(args.quick, args.out)
    started = time.perf_counter()
    results: dict = {"command": "python -m bench.repository" + (" --quick" if args.quick else "")}
    results["machine"] = machine()
    results["plan"] = asdict(plan)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-repository-logs-"))
    try:
        results.update(measure(plan, log_dir))
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    results["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    checked = targets(results)
    results["targets"] = [{**asdict(t), "verdict": t.verdict} for t in checked]
    text = markdown(results, checked)
    _write(out / "repository.json", (json.dumps(results, indent=2) + "\n").encode())
    _write(out / "repository.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
