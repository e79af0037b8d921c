"""Run every measurement in one go and collect the figures as JSON-ready dicts.

Servers are started one at a time, nothing else of the benchmark running meanwhile. Cold
starts go round-robin over the servers (so a change in machine load hits all of them
alike); each server's last start is kept for its warm latency, memory and throughput.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench import images, latency, memory, modes, reliability, servers, throughput, wire
from bench.plan import Plan

BUCKET = "bench-models"


@dataclass(frozen=True)
class Subject:
    """A server under test and what to measure on it."""

    key: str  # stable identifier used in results and targets
    label: str  # shown in tables
    spec: servers.ServerSpec
    large: bool  # MobileNetV2-sized: fewer timed requests
    throughput: bool = False


def instances_body(x: np.ndarray) -> bytes:
    """``{"instances": x}`` as a client sends it: values with 4 decimals (``-0.1234``; via
    float64, since float32 values would print with 17 digits and triple the body)."""
    rows = np.round(x.astype(np.float64), 4).tolist()
    return json.dumps({"instances": rows}, separators=(",", ":")).encode()


def inputs(manifest: dict) -> tuple[np.ndarray, np.ndarray]:
    """One digits-shaped and one MobileNetV2-shaped input (seeded, batch of one)."""
    rng = np.random.default_rng(1)
    digits = rng.uniform(0, 1, (1, *manifest["digits"]["shape"][1:])).astype(np.float32)
    image = rng.uniform(-1, 1, (1, *manifest["mobilenet"]["shape"][1:])).astype(np.float32)
    return np.round(digits, 4), np.round(image, 4)


def subjects(
    build_dir: Path, manifest: dict, bundled: Path, emulator_host: str, deployed: dict[str, str]
) -> list[Subject]:
    """Every server of the run: the function as deployed (``deployed``: deploy.sh's settings;
    local and Cloud Storage), once more with functions-framework's defaults, Flask +
    TensorFlow, and the load-per-request anti-pattern, on the bundled network and MobileNetV2."""
    digits_x, image_x = inputs(manifest)
    small, large = instances_body(digits_x), instances_body(image_x)
    int8 = build_dir / manifest["mobilenet"]["tflite"]["int8"]
    gcs = {"STORAGE_EMULATOR_HOST": emulator_host, **deployed}
    dev = Path(sys.executable)
    runtime = servers.runtime_python()
    defaults = {
        "WORKERS": "",
        "THREADS": "",
        "INTERPRETER_POOL_SIZE": "",
        "INTERPRETER_THREADS": "",
    }

    def tf(name: str) -> dict[str, str]:
        return {"BASELINE_SAVED_MODEL": str(build_dir / manifest[name]["saved_model"])}

    return [
        Subject("fn_digits", "function, bundled model", servers.function_spec(
            "fn_digits", str(bundled), small, **deployed), large=False),
        Subject("fn_mobilenet", "function, MobileNetV2 int8", servers.function_spec(
            "fn_mobilenet", str(int8), large, **deployed), large=True, throughput=True),
        # functions-framework's own defaults: one gunicorn process, 4 threads per CPU. The
        # JSON work holds the GIL, so this is what deploy.sh's WORKERS setting is measured against.
        Subject("fn_mobilenet_ff_defaults",
                "function, MobileNetV2 int8, functions-framework defaults (1 worker)",
                servers.function_spec("fn_mobilenet_ff_defaults", str(int8), large, **defaults),
                large=True, throughput=True),
        Subject("fn_gcs_digits", "function, bundled model from Cloud Storage",
                servers.function_spec("fn_gcs_digits", f"gs://{BUCKET}/digits.tflite", small,
                                      **gcs), large=False),
        Subject("fn_gcs_mobilenet", "function, MobileNetV2 int8 from Cloud Storage",
                servers.function_spec("fn_gcs_mobilenet", f"gs://{BUCKET}/mobilenet.tflite",
                                      large, **gcs), large=True),
        Subject("tf_digits", "Flask + TF SavedModel, digits CNN", servers.gunicorn_spec(
            "tf_digits", "bench.baseline_app:app", dev, small, **tf("digits")), large=False),
        Subject("tf_mobilenet", "Flask + TF SavedModel, MobileNetV2", servers.gunicorn_spec(
            "tf_mobilenet", "bench.baseline_app:app", dev, large, **tf("mobilenet")),
            large=True, throughput=True),
        Subject("load_per_request_digits", "load per request, bundled model",
                servers.gunicorn_spec("load_per_request_digits", "bench.per_request_app:app",
                                      runtime, small, PER_REQUEST_MODEL=str(bundled)),
                large=False),
        Subject("load_per_request_mobilenet", "load per request, MobileNetV2 int8",
                servers.gunicorn_spec("load_per_request_mobilenet", "bench.per_request_app:app",
                                      runtime, large, PER_REQUEST_MODEL=str(int8)),
                large=True),
    ]  # fmt: skip


def _median_throughput(measure: Callable[[], throughput.Throughput], repeats: int) -> dict:
    """Median calls/s over ``repeats`` runs, with the median server CPU per request."""
    runs = [measure() for _ in range(repeats)]
    cpu = [r.cpu_ms_per_request for r in runs if r.cpu_ms_per_request is not None]
    return {
        "per_second": statistics.median(r.per_second for r in runs),
        "cpu_ms_per_request": statistics.median(cpu) if cpu else None,
        "others_cores": statistics.median(r.others_cores or 0.0 for r in runs),
    }


def _serve_and_measure(subject: Subject, plan: Plan, log_dir: Path) -> dict:
    """The kept instance: cold start, warm latency, PSS after warm requests, peak, throughput."""
    spec = subject.spec
    result: dict = {}
    with memory.PeakSampler() as sampler:
        server = servers.start(spec, log_dir, on_spawn=sampler.watch)
        try:
            result["last_cold_start_s"] = server.cold_start_s
            count = plan.warm_large if subject.large else plan.warm_small
            warm = latency.http_latency(
                server.port, spec.predict_path, spec.body, count, plan.warmup
            )
            result["warm"] = asdict(warm)
            result["pss_bytes"] = memory.tree_pss(server.pid)
            if subject.throughput:
                result["throughput"] = {
                    str(clients): _median_throughput(
                        lambda c=clients: throughput.run(
                            server.port,
                            server.pid,
                            spec.predict_path,
                            spec.body,
                            c,
                            plan.throughput_requests(c),
                        ),
                        plan.throughput_repeats,
                    )
                    for clients in plan.clients
                }
        finally:
            server.stop()
    result["peak_pss_bytes"] = max(sampler.peak, result.get("pss_bytes", 0))
    result["pss_samples"] = sampler.samples
    return result


def run_servers(subject_list: list[Subject], plan: Plan, log_dir: Path) -> dict[str, dict]:
    """Cold starts round-robin, then each server's kept instance measured in turn."""
    cold: dict[str, list[float]] = {s.key: [] for s in subject_list}
    for _ in range(plan.cold_starts - 1):
        for subject in subject_list:
            server = servers.start(subject.spec, log_dir)
            try:
                cold[subject.key].append(server.cold_start_s)
            finally:
                server.stop()
    results = {}
    for subject in subject_list:
        print(f"  measuring {subject.label}", file=sys.stderr, flush=True)
        measured = _serve_and_measure(subject, plan, log_dir)
        cold[subject.key].append(measured.pop("last_cold_start_s"))
        measured["cold_start_s"] = cold[subject.key]
        measured["label"] = subject.label
        results[subject.key] = measured
    return results


def run(
    plan: Plan, build_dir: Path, manifest: dict, bundled: Path, deployed_env: dict[str, str]
) -> dict:
    """Everything but the deployed footprint: servers, in-process overhead, modes.
    ``deployed_env``: the function's settings as deployed (see ``bench.deployed``)."""
    from tests.gcs_emulator import StorageEmulator

    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    digits_x, image_x = inputs(manifest)
    int8 = build_dir / manifest["mobilenet"]["tflite"]["int8"]
    print("in-process predict vs bare invoke", file=sys.stderr, flush=True)
    overhead = {
        "fn_mobilenet": asdict(latency.predict_vs_invoke(str(int8), image_x, plan.invokes)),
        "fn_digits": asdict(latency.predict_vs_invoke(str(bundled), digits_x, plan.invokes * 5)),
    }
    # The pool one function process has, as deployed (or functions-framework's default).
    pool = int(deployed_env.get("INTERPRETER_POOL_SIZE") or len(os.sched_getaffinity(0)))
    in_process_rate = {
        str(clients): _median_throughput(
            lambda c=clients: throughput.in_process(
                str(int8), image_x, pool, c, plan.throughput_requests(c)
            ),
            plan.throughput_repeats,
        )
        for clients in plan.clients
    }
    print("wire forms", file=sys.stderr, flush=True)
    wire_forms = wire.measure(int8, instances_body(image_x), image_x, deployed_env, plan, log_dir)
    print("memory under hostile load", file=sys.stderr, flush=True)
    hostile = reliability.measure(
        int8, manifest["mobilenet"]["shape"], bundled, log_dir, plan.hostile_rounds
    )
    print("pictures in", file=sys.stderr, flush=True)
    pictures = build_dir / manifest["pictures"]["tflite"]
    picture_forms = images.measure(pictures, deployed_env, plan, log_dir)
    print("quantization modes", file=sys.stderr, flush=True)
    files = {m: build_dir / f for m, f in manifest["mobilenet"]["tflite"].items()}
    quantization = modes.measure(files, image_x, plan.invokes)
    with StorageEmulator(log_dir=log_dir) as emulator:
        emulator.upload(BUCKET, "digits.tflite", bundled.read_bytes())
        emulator.upload(BUCKET, "mobilenet.tflite", int8.read_bytes())
        subject_list = subjects(build_dir, manifest, bundled, emulator.host, deployed_env)
        print(f"servers ({len(subject_list)}), logs in {log_dir}", file=sys.stderr, flush=True)
        server_results = run_servers(subject_list, plan, log_dir)
    return {
        "servers": server_results,
        "in_process": overhead,
        "in_process_throughput": {"pool_size": pool, "rates": in_process_rate},
        "modes": quantization,
        "wire": wire_forms,
        "reliability": hostile,
        "images": picture_forms,
        "bodies": {s.key: len(s.spec.body) for s in subject_list},
    }
