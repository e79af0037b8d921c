"""One copy of the weights: real-size models served as deploy.sh deploys them.

For each ``--cpu`` setting (deploy.sh's WORKERS, THREADS and pool for it, ``--memory 1Gi``)
and each model (the bundled one, a 128 MB float32 and a 32 MB int8 MLP, from a local file
and from ``gs://`` through the storage emulator), one function instance is started with its
temp dir on a tmpfs (``/dev/shm``), as Cloud Run's is memory. Measured:

- **unreclaimable memory**: anonymous PSS of the whole process tree (gunicorn arbiter and
  workers) plus the bytes the function wrote to its temp dir (a downloaded model, packed
  weights), sampled every 20 ms from the spawn through a phase of 4 concurrent clients
  (the peak) and once after it; "beyond the bundled model's" subtracts the bundled model's
  peak under the same settings, "per byte of the file" divides that by the model's size;
- **cold start**: spawn to the first 200 answer;
- **engines**: what each worker's load log line says (engine, weight cache state, build
  time), and in one process the first engine's build against a further one's;
- **throughput** at 1, 4 and 16 clients.

``--source DIR`` serves another checkout of the function (for a before/after on one
machine). MobileNetV2 int8 is measured apart (:func:`mobilenet_engines`): the compiled
engine against the interpreter pool, same run, alternating.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from bench import deployed, latency, memory, servers, throughput
from bench.plan import Plan
from serving.memory import anonymous_bytes

TMPFS = Path("/dev/shm")
BUCKET = "bench-weights"
CPUS = (1, 2)
MEMORY = "1Gi"
REQUESTS_FACTOR = 4  # the plan's throughput counts are sized for MobileNetV2; MLPs are faster


def repeats(plan: Plan) -> int:
    """Instances started per case: 3 in the full run, 1 in the quick one."""
    return 3 if plan.name == "full" else 1


def written_bytes(directory: Path) -> int:
    """Bytes a directory's files take on their file system (sparse files count what is used)."""
    total = 0
    for path in directory.rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file():
                total += path.stat().st_blocks * 512
    return total


def unreclaimable(pid: int, temp_dir: Path) -> int:
    """Anonymous PSS of ``pid``'s process tree plus what it wrote to ``temp_dir``."""
    try:
        root = psutil.Process(pid)
        pids = [root.pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return 0
    return sum(anonymous_bytes(p) for p in pids) + written_bytes(temp_dir)


@dataclass(frozen=True)
class Case:
    """One model served one way."""

    key: str
    label: str
    model_path: str  # local path or gs:// URI
    file: Path  # the local file (its size is the "per byte" denominator)
    body: bytes


def rows_body(width: int) -> bytes:
    """One TF Serving row of ``width`` features (4 decimals, as a client sends them)."""
    x = np.round(np.random.default_rng(5).uniform(-1, 1, width), 4)
    return json.dumps({"instances": [x.tolist()]}, separators=(",", ":")).encode()


def cases(build_dir: Path, manifest: dict, bundled: Path) -> list[Case]:
    mlp = manifest["mlp"]
    body = rows_body(mlp["shape"][1])
    digits = json.dumps({"instances": [np.zeros((8, 8, 1)).tolist()]}).encode()
    found = [Case("bundled", "bundled model", str(bundled), bundled, digits)]
    for mode in ("float32", "int8"):
        path = build_dir / mlp["tflite"][mode]
        size = f"{path.stat().st_size / 2**20:.0f} MB {mode}"
        found.append(Case(f"{mode}_local", f"{size}, local file", str(path), path, body))
        found.append(
            Case(f"{mode}_gcs", f"{size}, gs://", f"gs://{BUCKET}/{path.name}", path, body)
        )
    return found


def _every_worker_loads(server: servers.Server, body: bytes, workers: int) -> None:
    """Send requests on fresh connections until each worker has loaded the model (its load
    line is in the log), so that every instance is measured with all its workers warm;
    bounded to 400 requests."""
    for _ in range(400):
        if len(servers.log_entries(server.logs(), "model loaded")) >= workers:
            return
        client = latency.Client(server.port)
        try:
            client.post(server.spec.predict_path, body)
        finally:
            client.close()
    raise RuntimeError(f"{server.spec.name}: fewer than {workers} workers loaded the model")


def measure_case(case: Case, env: dict[str, str], plan: Plan, log_dir: Path, source: Path) -> dict:
    """Start one instance of ``case``, load it with 4 clients, then measure throughput."""
    temp_dir = Path(tempfile.mkdtemp(prefix="bench-tmp-", dir=TMPFS))
    spec = servers.function_spec(
        f"weights-{case.key}", case.model_path, case.body, source=source, TMPDIR=str(temp_dir),
        **env,
    )  # fmt: skip
    try:
        measure = functools.partial(unreclaimable, temp_dir=temp_dir)
        with memory.PeakSampler(0.02, measure) as sampler:
            server = servers.start(spec, log_dir, on_spawn=sampler.watch, timeout=300)
            try:
                _every_worker_loads(server, case.body, int(env.get("WORKERS") or 1))
                loaded = throughput.run(
                    server.port, server.pid, spec.predict_path, case.body, 4,
                    REQUESTS_FACTOR * plan.throughput_requests(4),
                )  # fmt: skip
                steady = unreclaimable(server.pid, temp_dir)
                rates = {
                    str(c): throughput.run(
                        server.port, server.pid, spec.predict_path, case.body, c,
                        REQUESTS_FACTOR * plan.throughput_requests(c),
                    ).per_second
                    for c in plan.clients
                }  # fmt: skip
                logs = servers.log_entries(server.logs(), "model loaded")
                cold = server.cold_start_s
            finally:
                server.stop()
        return {
            "label": case.label,
            "model_bytes": case.file.stat().st_size,
            "cold_start_s": cold,
            "peak_bytes": max(sampler.peak, steady),
            "steady_bytes": steady,
            "loaded_per_second": loaded.per_second,
            "per_second": rates,
            "workers": [
                {
                    "engine": line.get("engine", "interpreter"),
                    "weight_cache": (line.get("weight_cache") or {}).get("state"),
                    "engine_build_ms": line.get("engine_build_ms"),
                    "load_ms": line.get("load_ms"),
                }
                for line in logs
            ],
        }
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def engine_builds(model: Path, source: Path) -> dict:
    """In a fresh process of the deployed environment: the first engine's build time and a
    further one's, for each engine (compiled: a second model of the same file maps the
    packed weights; interpreter: a second runner of the pool packs its own copy)."""
    code = """
import json, sys, tempfile
from serving.model import Model
from serving.memory import anonymous_bytes
path, out = sys.argv[1], {}
with tempfile.TemporaryDirectory(dir="/dev/shm") as cache:
    for engine in ("compiled", "interpreter"):
        before = anonymous_bytes()
        first = Model.load(path, engine=engine, pool_size=2, weight_cache_dir=cache)
        if engine == "compiled":
            again = Model.load(path, engine=engine, weight_cache_dir=cache)
            further = again.engine.first_build_ms
            state = [first.weight_cache.state.value, again.weight_cache.state.value]
            added = again.footprint.engine_bytes
        else:
            with first.engine.runner(), first.engine.runner():  # two at once: a second one
                pass
            further = first.engine.later_build_ms[0]
            state = None
            added = anonymous_bytes() - before - first.footprint.engine_bytes
        out[engine] = {
            "first_ms": first.engine.first_build_ms, "further_ms": further, "cache": state,
            "first_added_bytes": first.footprint.engine_bytes, "further_added_bytes": added,
        }
print(json.dumps(out))
"""
    result = subprocess.run(
        [str(servers.runtime_python()), "-c", code, str(model)],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip()[-500:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def mobilenet_engines(
    int8: Path, shape: list[int], plan: Plan, log_dir: Path, source: Path
) -> dict:
    """MobileNetV2 int8 as deploy.sh deploys it on 2 vCPUs, compiled engine against the
    interpreter pool: both servers up, p50 at one client in alternating blocks, then
    throughput at 4 clients in alternating repeats (same run, so load drift hits both)."""
    from bench import wire

    env, how = deployed.settings(2, MEMORY)
    image = np.random.default_rng(1).uniform(-1, 1, (1, *shape[1:])).astype(np.float32)
    temp_dir = Path(tempfile.mkdtemp(prefix="bench-tmp-", dir=TMPFS))
    form = next(
        f for f in wire.forms(image, b"", "input_layer", 1.0, 0) if f.key == "v2_binary_fp32"
    )
    started = {}
    # A third server: the compiled engine with two workers per vCPU, so that one worker's
    # Python (reading, decoding) overlaps another's inference, which holds its GIL.
    variants = {
        "compiled": {"SERVING_ENGINE": "compiled"},
        "interpreter": {"SERVING_ENGINE": "interpreter"},
        "compiled, 4 workers": {"SERVING_ENGINE": "compiled", "WORKERS": "4", "THREADS": "1"},
    }
    try:
        for key, extra in variants.items():
            spec = dataclasses.replace(
                servers.function_spec(
                    f"mobilenet-{key.replace(', ', '-').replace(' ', '')}", str(int8), form.body,
                    source=source, TMPDIR=str(temp_dir), **{**env, **extra},
                ),
                predict_path=form.path,
                headers=form.headers,
            )  # fmt: skip
            started[key] = servers.start(spec, log_dir)
        clients = {e: latency.Client(s.port) for e, s in started.items()}
        p50 = latency.alternating(
            lambda: clients["compiled"].post(form.path, form.body, form.headers),
            lambda: clients["interpreter"].post(form.path, form.body, form.headers),
            plan.warm_large * 2,
        )
        for client in clients.values():
            client.close()
        rates: dict[str, list[float]] = {key: [] for key in variants}
        for _ in range(max(3, plan.throughput_repeats)):
            for engine, server in started.items():
                rates[engine].append(
                    throughput.run(
                        server.port, server.pid, form.path, form.body, 4,
                        plan.throughput_requests(4) * 2, form.headers,
                    ).per_second
                )  # fmt: skip
    finally:
        for server in started.values():
            server.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)
    return {
        "settings": how,
        "form": form.label,
        "p50_ms": {"compiled": p50[0], "interpreter": p50[1]},
        "per_second_4_clients": {e: statistics.median(r) for e, r in rates.items()},
    }


def derive(config: dict) -> None:
    """Memory beyond the bundled model's, absolute and per byte of the file, for each case.

    Against the bundled model's lowest peak: its instances now and then peak ~30 MB higher
    (with 2 workers), and subtracting such a peak would flatter every model.
    """
    bundled = config["cases"]["bundled"]
    base = min(bundled.get("peaks_bytes") or [bundled["peak_bytes"]])
    for key, measured in config["cases"].items():
        if key != "bundled":
            beyond = measured["peak_bytes"] - base
            measured["beyond_bundled_bytes"] = beyond
            measured["per_file_byte"] = beyond / measured["model_bytes"]


def workers_per_vcpu(case: Case, plan: Plan, log_dir: Path, source: Path) -> dict:
    """On 2 vCPUs, deploy.sh's one worker per vCPU against one worker with all the threads:
    requests per second at 4 and 16 clients, each setting started alike."""
    env, _ = deployed.settings(2, MEMORY)
    found = {}
    for workers in (1, 2):
        settings = {**env, "WORKERS": str(workers), "THREADS": str(4 // workers)}
        measured = measure_case(case, settings, plan, log_dir, source)
        found[str(workers)] = {c: measured["per_second"][c] for c in ("4", "16")}
    return {"model": case.label, "per_second": found}


def measure(
    build_dir: Path,
    manifest: dict,
    bundled: Path,
    plan: Plan,
    log_dir: Path,
    source: Path,
    *,
    builds: bool = True,
) -> dict:
    """Every figure of this module (see the module docstring) but MobileNetV2's;
    ``builds=False`` skips the engine builds (a checkout from before the engines)."""
    from tests.gcs_emulator import StorageEmulator

    found = cases(build_dir, manifest, bundled)
    results: dict = {"configs": {}, "source": str(source)}
    with StorageEmulator(log_dir=log_dir) as emulator:
        for case in found:
            if case.model_path.startswith("gs://"):
                emulator.upload(BUCKET, case.file.name, case.file.read_bytes())
        for cpus in CPUS:
            env, how = deployed.settings(cpus, MEMORY)
            env = {**env, "STORAGE_EMULATOR_HOST": emulator.host}
            config: dict = {"settings": how, "cases": {}}
            for case in found:
                print(f"  --cpu {cpus}: {case.label}", file=sys.stderr, flush=True)
                # The peak of a few hundred requests varies by +-16 MB from one instance to
                # the next (threads' first allocations): the instance with the median peak
                # of REPEATS is kept, all its figures together.
                runs = [
                    measure_case(case, env, plan, log_dir, source) for _ in range(repeats(plan))
                ]
                runs.sort(key=lambda r: r["peak_bytes"])
                kept = runs[len(runs) // 2]
                kept["peaks_bytes"] = [r["peak_bytes"] for r in runs]
                config["cases"][case.key] = kept
            derive(config)
            results["configs"][str(cpus)] = config
    if not builds:
        return results
    print("  engine builds", file=sys.stderr, flush=True)
    results["engine_builds"] = {
        mode: engine_builds(build_dir / manifest["mlp"]["tflite"][mode], source)
        for mode in ("float32", "int8")
    }
    return results


if __name__ == "__main__":
    from bench.weights_report import main

    main()
