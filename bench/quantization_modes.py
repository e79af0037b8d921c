"""Benchmark the converter's modes: size, invoke latency in the serving runtime, conversion time.

Two parts, each through the real CLI (``python -m convert``), so the figures are what a
user of the CLI sees:

1. MobileNetV2 (``keras.applications``, ``weights=None``: random weights, nothing is
   downloaded), 224x224x3, converted in all modes with 100 calibration samples; per mode the
   .tflite size, the median single-image invoke latency in the serving runtime (1 thread, as
   the function's interpreters) and the wall-clock conversion time.
2. The bundled digits model: int8 size versus the float32 .tflite (target <= 0.3x) and
   top-1 agreement with the Keras model on held-out digits (target >= 99%).

Usage: ``.venv/bin/python bench/quantization_modes.py [--out build/bench-quantization]``.
Writes ``results.json`` and ``results.md`` there and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MODES = ("float32", "float16", "dynamic", "int8", "int8-float-io")
CALIBRATION_SAMPLES = 100
EVAL_SAMPLES = 20


def build_mobilenet(out: Path) -> tuple[Path, Path, Path]:
    """MobileNetV2 with random weights as .keras, plus calibration/eval images in [-1, 1]."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), weights=None, classes=1000, name="mobilenet_v2"
    )
    path = out / "mobilenet_v2.keras"
    model.save(path)
    name = model.inputs[0].name
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (CALIBRATION_SAMPLES + EVAL_SAMPLES, 224, 224, 3)).astype(
        np.float32
    )
    calibration, evaluation = out / "mobilenet-calibration.npz", out / "mobilenet-eval.npz"
    np.savez(calibration, **{name: images[:CALIBRATION_SAMPLES]})
    np.savez(evaluation, **{name: images[CALIBRATION_SAMPLES:]})
    return path, calibration, evaluation


def run_cli(source: Path, output: Path, mode: str, *extra: str | Path) -> tuple[dict, float]:
    """Run the CLI; (its JSON report, wall-clock seconds of the whole run)."""
    report = output.with_suffix(".json")
    cmd = [sys.executable, "-m", "convert", str(source), "-o", str(output), "--mode", mode]
    cmd += ["--report", str(report), *map(str, extra)]
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr}")
    print(result.stdout, file=sys.stderr)
    return json.loads(report.read_text()), seconds


def mobilenet(out: Path) -> list[dict]:
    """Part 1: every mode on MobileNetV2."""
    source, calibration, evaluation = build_mobilenet(out)
    rows = []
    for mode in MODES:
        extra = ["--eval", evaluation]
        if mode.startswith("int8"):
            extra += ["--calibration", calibration, "--calibration-samples", CALIBRATION_SAMPLES]
        report, wall = run_cli(source, out / f"mobilenet_v2-{mode}.tflite", mode, *extra)
        rows.append(
            {
                "mode": mode,
                "tflite_bytes": report["tflite_bytes"],
                "invoke_ms": report["latency"]["tflite_ms"],
                "tensorflow_ms": report["latency"]["original_ms"],
                "conversion_s": report["conversion_seconds"],
                "cli_wall_s": wall,
                "top1_agreement": report["outputs"][0]["top1_agreement"],
                "max_abs_error": report["outputs"][0]["max_abs_error"],
                "backend": f"{report['runtime']['backend']} {report['runtime']['backend_version']}",
            }
        )
    return rows


def digits(out: Path) -> dict:
    """Part 2: the bundled model's recipe, int8 against float32."""
    build = out / "digits"
    int8 = out / "digits-int8.tflite"
    train = [sys.executable, str(REPO / "model" / "train_digits.py"), "--build-dir", str(build)]
    subprocess.run([*train, "-o", str(int8)], cwd=REPO, check=True, capture_output=True)
    keras_model = build / "digits.keras"
    data = ["--eval", build / "eval.npz", "--calibration", build / "calibration.npz"]
    data += ["--calibration-samples", "500"]
    int8_report, _ = run_cli(keras_model, int8, "int8", *data)
    float32_report, _ = run_cli(keras_model, out / "digits-float32.tflite", "float32", *data)
    return {
        "int8_bytes": int8_report["tflite_bytes"],
        "float32_bytes": float32_report["tflite_bytes"],
        "size_ratio": int8_report["tflite_bytes"] / float32_report["tflite_bytes"],
        "top1_agreement": int8_report["outputs"][0]["top1_agreement"],
        "eval_samples": int8_report["evaluation"],
        "accuracy_keras": int8_report["outputs"][0]["accuracy_original"],
        "accuracy_int8": int8_report["outputs"][0]["accuracy_tflite"],
        "invoke_ms_int8": int8_report["latency"]["tflite_ms"],
        "invoke_ms_float32": float32_report["latency"]["tflite_ms"],
    }


def markdown(rows: list[dict], digit: dict, load: float) -> str:
    """Both parts as Markdown tables, targets checked."""
    float32 = next(r for r in rows if r["mode"] == "float32")
    lines = [
        f"MobileNetV2 224x224 (random weights), {rows[0]['backend']}, 1 interpreter thread, "
        f"{os.cpu_count()} cores (load average {load:.2f} when the run started); int8 modes "
        f"calibrated on {CALIBRATION_SAMPLES} samples. Conversion is the converter alone; the "
        "whole CLI run adds loading, exporting, evaluation and latency measurement.",
        "Top-1 agreement is not shown: with random weights MobileNetV2's output is nearly "
        "constant, so agreement says nothing here (see the digits figures).",
        "",
        "| mode | .tflite size | size vs float32 | median invoke | vs float32 | conversion "
        "| whole CLI run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['tflite_bytes'] / 2**20:.2f} MiB "
            f"| {r['tflite_bytes'] / float32['tflite_bytes']:.2f}x "
            f"| {r['invoke_ms']:.1f} ms | {r['invoke_ms'] / float32['invoke_ms']:.2f}x "
            f"| {r['conversion_s']:.1f} s | {r['cli_wall_s']:.1f} s |"
        )
    by_mode = {r["mode"]: r for r in rows}
    int8_fastest = by_mode["int8"]["invoke_ms"] < min(
        by_mode["float32"]["invoke_ms"], by_mode["dynamic"]["invoke_ms"]
    )
    int8_quick = by_mode["int8"]["conversion_s"] < 120
    lines += [
        "",
        f"- int8 invoke faster than float32 and dynamic: {'met' if int8_fastest else 'MISSED'}",
        f"- int8 conversion with {CALIBRATION_SAMPLES} calibration samples under 2 minutes: "
        f"{'met' if int8_quick else 'MISSED'} ({by_mode['int8']['conversion_s']:.1f} s)",
        "",
        "Digits CNN (the bundled model's recipe):",
        "",
        f"- int8 {digit['int8_bytes']} bytes vs float32 .tflite {digit['float32_bytes']} bytes: "
        f"{digit['size_ratio']:.3f}x (target <= 0.3: "
        f"{'met' if digit['size_ratio'] <= 0.3 else 'MISSED'})",
        f"- top-1 agreement with the Keras model on {digit['eval_samples']}: "
        f"{100 * digit['top1_agreement']:.2f}% (target >= 99%: "
        f"{'met' if digit['top1_agreement'] >= 0.99 else 'MISSED'})",
        f"- accuracy: Keras {100 * digit['accuracy_keras']:.2f}%, int8 "
        f"{100 * digit['accuracy_int8']:.2f}%; median invoke int8 "
        f"{digit['invoke_ms_int8']:.4f} ms, "
        f"float32 {digit['invoke_ms_float32']:.4f} ms",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run both parts and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench-quantization")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]  # other work on the machine skews latency: say how much there was
    rows = mobilenet(args.out)
    digit = digits(args.out)
    (args.out / "results.json").write_text(
        json.dumps({"mobilenet_v2": rows, "digits": digit, "load_average": load}, indent=2) + "\n"
    )
    text = markdown(rows, digit, load)
    (args.out / "results.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
