"""``python -m bench.weights``: run the weights benchmark, check its targets, write its page.

Writes ``weights.md`` and ``weights.json`` into ``bench/`` (the published figures) or, with
``--quick`` (small MLPs, fewer requests: only shows the benchmark works), into
``build/bench/quick/``. ``--before REV`` also serves the same cases from a checkout of the
git revision ``REV`` (a temporary worktree) for a before/after on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench import servers, weights
from bench.__main__ import BUNDLED, REPO, _write, build_models, machine
from bench.plan import FULL, QUICK
from bench.report import _table, targets_table
from bench.targets import Target

MB = 1e6
# Targets of the weights issue: memory beyond the bundled model's, per byte of the file.
LOCAL_PER_BYTE, GCS_PER_BYTE = 1.3, 2.3
FURTHER_ENGINE = 0.10  # a further engine builds in at most this share of the first one's time
P50_RATIO, THROUGHPUT_RATIO = 1.05, 0.95


def targets(results: dict) -> list[Target]:
    found = []
    for cpus, config in results["after"]["configs"].items():
        for key, case in config["cases"].items():
            if key == "bundled":
                continue
            bar = GCS_PER_BYTE if key.endswith("_gcs") else LOCAL_PER_BYTE
            found.append(
                Target(
                    f"memory beyond the bundled model's, {case['label']}, --cpu {cpus}",
                    f"<= {bar}x the file",
                    f"{case['per_file_byte']:.2f}x ({case['beyond_bundled_bytes'] / MB:.0f} MB)",
                    case["per_file_byte"] <= bar,
                )
            )
    for mode, builds in results["after"]["engine_builds"].items():
        compiled = builds.get("compiled")
        if compiled:
            share = compiled["further_ms"] / compiled["first_ms"]
            times = f"{compiled['further_ms']:.1f} ms vs {compiled['first_ms']:.0f} ms"
            found.append(
                Target(
                    f"further compiled engine of the {mode} MLP (maps the packed weights)",
                    f"<= {FURTHER_ENGINE:.0%} of the first one's build",
                    f"{share:.1%} ({times})",
                    share <= FURTHER_ENGINE,
                )
            )
    mobilenet = results["after"].get("mobilenet")
    if mobilenet:
        p50 = mobilenet["p50_ms"]["compiled"] / mobilenet["p50_ms"]["interpreter"]
        rate = (
            mobilenet["per_second_4_clients"]["compiled"]
            / mobilenet["per_second_4_clients"]["interpreter"]
        )
        found.append(
            Target(
                "MobileNetV2 int8 p50 at 1 client, compiled / interpreter pool",
                f"<= {P50_RATIO}x",
                f"{p50:.3f}x",
                p50 <= P50_RATIO,
            )
        )
        found.append(
            Target(
                "MobileNetV2 int8 throughput at 4 clients, compiled / interpreter",
                f">= {THROUGHPUT_RATIO}x",
                f"{rate:.3f}x",
                rate >= THROUGHPUT_RATIO,
            )
        )
    before = results.get("before")
    if before:
        for cpus, config in results["after"]["configs"].items():
            now = config["cases"]["bundled"]
            old = before["configs"][cpus]["cases"]["bundled"]
            found.append(
                Target(
                    f"bundled model cold start, --cpu {cpus}, after / before",
                    "no regression (shown)",
                    f"{now['cold_start_s']:.3f} s / {old['cold_start_s']:.3f} s",
                    None,
                )
            )
            found.append(
                Target(
                    f"bundled model peak memory, --cpu {cpus}, after / before",
                    "no regression (shown)",
                    f"{now['peak_bytes'] / MB:.1f} MB / {old['peak_bytes'] / MB:.1f} MB",
                    None,
                )
            )
    return found


def _peaks(case: dict) -> str:
    """The kept instance's peak, with every instance's peak when there were several."""
    text = f"{case['peak_bytes'] / MB:.0f} MB"
    peaks = case.get("peaks_bytes", [])
    return text + (f" ({', '.join(f'{b / MB:.0f}' for b in peaks)})" if len(peaks) > 1 else "")


def memory_table(results: dict) -> list[str]:
    before = results.get("before", {}).get("configs", {})
    rows = []
    for cpus, config in results["after"]["configs"].items():
        for key, case in config["cases"].items():
            old = before.get(cpus, {}).get("cases", {}).get(key)
            per_byte = f"{case['per_file_byte']:.2f}x" if "per_file_byte" in case else ""
            old_per_byte = f"{old['per_file_byte']:.2f}x" if old and "per_file_byte" in old else ""
            rows.append(
                [
                    f"--cpu {cpus}",
                    case["label"],
                    _peaks(case),
                    f"{case.get('beyond_bundled_bytes', 0) / MB:.0f} MB" if per_byte else "",
                    per_byte,
                    _peaks(old) if old else "",
                    old_per_byte,
                    f"{case['cold_start_s']:.2f} s",
                    f"{old['cold_start_s']:.2f} s" if old else "",
                ]
            )
    return _table(
        [
            "settings",
            "model",
            "peak",
            "beyond bundled",
            "per file byte",
            "before: peak",
            "before: per byte",
            "cold start",
            "before: cold",
        ],
        rows,
        "llrrrrrrr",
    )


def throughput_table(results: dict) -> list[str]:
    rows = []
    for cpus, config in results["after"]["configs"].items():
        for case in config["cases"].values():
            engines = ", ".join(
                f"{w['engine']}{'/' + w['weight_cache'] if w['weight_cache'] else ''} "
                f"{w['engine_build_ms']:.0f} ms"
                for w in case["workers"]
                if w["engine_build_ms"] is not None
            )
            rates = [f"{case['per_second'][c]:.0f}" for c in sorted(case["per_second"], key=int)]
            rows.append([f"--cpu {cpus}", case["label"], engines, *rates])
    clients = sorted(
        next(iter(results["after"]["configs"].values()))["cases"]["bundled"]["per_second"], key=int
    )
    return _table(
        [
            "settings",
            "model",
            "workers' engines (cache, build)",
            *[f"{c} clients req/s" for c in clients],
        ],
        rows,
        "lll" + "r" * len(clients),
    )


def builds_table(results: dict) -> list[str]:
    rows = []
    for mode, builds in results["after"]["engine_builds"].items():
        for engine, b in builds.items():
            if engine == "error":
                rows.append([mode, "error", b, "", "", ""])
                continue
            rows.append(
                [
                    mode,
                    engine,
                    f"{b['first_ms']:.1f} ms ({b['first_added_bytes'] / MB:.1f} MB)",
                    f"{b['further_ms']:.1f} ms ({b['further_added_bytes'] / MB:.1f} MB)",
                    f"{b['further_ms'] / b['first_ms']:.1%}",
                    " -> ".join(b["cache"] or []),
                ]
            )
    return _table(
        [
            "MLP",
            "engine",
            "first engine (heap added)",
            "further engine (heap added)",
            "further / first",
            "weight cache",
        ],
        rows,
        "llrrrl",
    )


def markdown(results: dict, checked: list[Target]) -> str:
    m = results["machine"]
    lines = [
        "# One copy of the weights: measured",
        "",
        f"`{results['command']}` on {m['description']}, load {m['load_before']} before and "
        f"{m['load_after']} after, {results['finished']}, {results['seconds']} s. "
        f"Models: {results['mlp']}. Settings as `deploy.sh --memory {weights.MEMORY} --cpu N` "
        "sets them; temp dir on a tmpfs. Memory is unreclaimable memory: anonymous PSS of the "
        "process tree plus the bytes written to the temp dir, peak from the spawn through 4 "
        f"concurrent clients; {results['repeats']} instance(s) per case, the one with the "
        "median peak kept (every peak in brackets); 'beyond bundled' subtracts the bundled "
        "model's lowest peak under the same settings (the conservative choice).",
        "",
        "## Targets",
        "",
        *targets_table(checked),
        "",
        "## Memory and cold start"
        + (f" (before: `{results['before']['revision']}`)" if results.get("before") else ""),
        "",
        *memory_table(results),
        "",
        "## Engines and throughput",
        "",
        *throughput_table(results),
        "",
        "## Building a further engine (one process, deployed environment)",
        "",
        *builds_table(results),
        "",
    ]
    workers = results["after"].get("workers")
    if workers:
        lines += [
            f"## Workers on 2 vCPUs ({workers['model']}, compiled engine, 4 threads in all)",
            "",
            *_table(
                ["gunicorn workers", "req/s, 4 clients", "req/s, 16 clients"],
                [[w, f"{r['4']:.0f}", f"{r['16']:.0f}"] for w, r in workers["per_second"].items()],
                "lrr",
            ),
            "",
        ]
    mobilenet = results["after"].get("mobilenet")
    if mobilenet:
        lines += [
            "## MobileNetV2 int8: compiled engine against the interpreter pool",
            "",
            f"{mobilenet['settings']}; {mobilenet['form']}; both servers up, alternating.",
            "",
            *_table(
                ["engine", "p50, 1 client", "req/s, 4 clients"],
                [
                    [
                        e,
                        f"{mobilenet['p50_ms'][e]:.2f} ms" if e in mobilenet["p50_ms"] else "",
                        f"{rate:.1f}",
                    ]
                    for e, rate in mobilenet["per_second_4_clients"].items()
                ],
                "lrr",
            ),
            "",
        ]
    return "\n".join(lines)


def _write_page(results: dict, out: Path) -> str:
    """Check the targets, then write weights.json and weights.md; returns the Markdown."""
    checked = targets(results)
    results["targets"] = [{**asdict(t), "verdict": t.verdict} for t in checked]
    text = markdown(results, checked)
    _write(out / "weights.json", (json.dumps(results, indent=2) + "\n").encode())
    _write(out / "weights.md", text.encode())
    return text


def render(path: Path) -> None:
    """Recompute a recorded run's derived figures and targets; rewrite its page beside it."""
    results = json.loads(path.read_text())
    for side in ("after", "before"):
        for config in results.get(side, {}).get("configs", {}).values():
            weights.derive(config)
    print(_write_page(results, path.parent))


def _worktree(revision: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="bench-before-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), revision],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    # The bundled model is the same file in both: the old checkout serves its own copy.
    return path


def main(argv: list[str] | None = None) -> None:
    servers.stop_on_sigterm()
    parser = argparse.ArgumentParser(prog="python -m bench.weights", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small MLPs, fewer requests")
    parser.add_argument("--out", type=Path, help="output directory")
    parser.add_argument("--before", metavar="REV", help="also measure this git revision")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: recompute the derived figures and targets of a weights.json "
        "and write its page again (after a change to how they are derived)",
    )
    args = parser.parse_args(argv)
    if args.render:
        render(args.render)
        return
    plan = QUICK if args.quick else FULL
    out = args.out or (REPO / "build" / "bench" / "quick" if args.quick else REPO / "bench")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict = {
        "command": "python -m bench.weights"
        + (" --quick" if args.quick else "")
        + (f" --before {args.before}" if args.before else "")
    }
    results["machine"] = machine()
    results["plan"] = asdict(plan)
    results["repeats"] = weights.repeats(plan)
    print(f"building models ({plan.variant}, cached under build/bench/)", file=sys.stderr)
    build_dir, manifest = build_models(plan)
    results["mlp"] = manifest["mlp"]["description"]
    log_dir = Path(tempfile.mkdtemp(prefix="bench-weights-logs-"))
    print("after (this checkout)", file=sys.stderr, flush=True)
    after = weights.measure(build_dir, manifest, BUNDLED, plan, log_dir, REPO)
    int8 = build_dir / manifest["mobilenet"]["tflite"]["int8"]
    print("  MobileNetV2 int8, compiled vs interpreter", file=sys.stderr, flush=True)
    shape = manifest["mobilenet"]["shape"]
    after["mobilenet"] = weights.mobilenet_engines(int8, shape, plan, log_dir, REPO)
    print("  workers per vCPU (compiled engine, 2 vCPUs)", file=sys.stderr, flush=True)
    f32 = next(c for c in weights.cases(build_dir, manifest, BUNDLED) if c.key == "float32_local")
    after["workers"] = weights.workers_per_vcpu(f32, plan, log_dir, REPO)
    results["after"] = after
    if args.before:
        source = _worktree(args.before)
        try:
            print(f"before ({args.before})", file=sys.stderr, flush=True)
            before = weights.measure(
                build_dir, manifest, BUNDLED, plan, log_dir, source, builds=False
            )
            before["revision"] = args.before
            results["before"] = before
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(source)],
                cwd=REPO,
                check=False,
                capture_output=True,
            )
    results["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = _write_page(results, out)
    print(text)
    print(f"wrote {out / 'weights.md'} and weights.json in {results['seconds']} s", file=sys.stderr)
