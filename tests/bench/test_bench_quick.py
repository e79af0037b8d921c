"""Smoke test of the benchmark: ``python -m bench --quick`` end to end, into a temp dir.

Checks that every measurement row is produced (table, Markdown, JSON, PNG), not the
timings themselves: those depend on the machine and are what the benchmark reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.run import run_quick

SERVERS = {
    "fn_digits": "function, bundled model",
    "fn_mobilenet": "function, MobileNetV2 int8",
    "fn_mobilenet_ff_defaults": "function, MobileNetV2 int8, functions-framework defaults",
    "fn_gcs_digits": "function, bundled model from Cloud Storage",
    "fn_gcs_mobilenet": "function, MobileNetV2 int8 from Cloud Storage",
    "tf_digits": "Flask + TF SavedModel, digits CNN",
    "tf_mobilenet": "Flask + TF SavedModel, MobileNetV2",
    "load_per_request_digits": "load per request, bundled model",
    "load_per_request_mobilenet": "load per request, MobileNetV2 int8",
}
TARGETS = (
    "cold start, bundled model: function vs Flask + TF SavedModel",
    "cold start, bundled model: function",
    "memory (PSS, all processes), bundled model: function vs Flask + TF",
    "memory (PSS, all processes), bundled model: function",
    "in-process predict vs bare invoke(), MobileNetV2 int8",
    "HTTP p50 overhead over in-process predict, bundled model",
    "throughput, 4 vs 1 concurrent clients, MobileNetV2 int8",
    "load-per-request anti-pattern, warm p50 vs the function",
    "V2 binary FP32 in, binary out: p50 vs bare invoke(), MobileNetV2 int8",
    "V2 binary raw INT8 in: p50 vs bare invoke(), MobileNetV2 int8",
    "throughput at 4 clients: V2 binary vs TF Serving JSON, MobileNetV2 int8",
    "224x224x3 FP32 binary body to the interpreter's input",
    "peak memory, 4 concurrent JSON bodies at the limit, --cpu 1 --memory 512Mi",
    "the budget keeps that peak below the configured memory (512Mi)",
    "peak memory, 4 concurrent JSON bodies at the limit, --cpu 1 --memory 1Gi",
    "the budget keeps that peak below the configured memory (1Gi)",
    "resident memory added by a 200 MB upload",
    "raw 224x224 JPEG to :predict: p50 vs bare invoke(), MobileNetV2 int8",
    "JPEG decode + preprocess alone, MobileNetV2 int8 input",
)
OTHER_ROWS = (
    "Model.predict vs bare invoke(), MobileNetV2 int8",
    "HTTP p50 vs in-process predict, bundled model",
    "in-process Model.predict, pool of",
    "new interpreter (load + allocate + set input) vs invoke(), MobileNetV2 int8",
    "| float32 |",
    "| dynamic |",
    "| float16 |",
    "| int8 |",
    "TF Serving JSON (instances)",
    "V2 JSON (FP32 data)",
    "V2 binary FP32 in, binary out",
    "V2 binary raw INT8 in, binary out",
    "Throughput, 4 clients, same server: V2 binary FP32",
    "TF Serving JSON (instances) |",
    "V2 binary |",
    "deploy.sh --cpu 1 --memory 512Mi |",
    "A 200 MB upload refused at its header added",
    "raw JPEG to :predict",
    "same picture as JSON numbers",
    "Decode + preprocess of the",
    "upload (files .gcloudignore lets through)",
    "installed runtime dependencies (requirements.txt)",
)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run the quick benchmark once into a temp dir: (output dir, what it printed)."""
    out = tmp_path_factory.mktemp("bench")
    printed = run_quick("bench", out)
    return out, printed


pytestmark = [pytest.mark.slow, pytest.mark.needs_tensorflow, pytest.mark.timeout(660)]


def test_writes_only_its_three_files(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md", "results.png"]
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prints_the_markdown_it_writes(quick_run: tuple[Path, str]) -> None:
    out, printed = quick_run
    assert (out / "results.md").read_text().strip() in printed


def test_every_measurement_row_is_present(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    text = (out / "results.md").read_text()
    for row in (*SERVERS.values(), *TARGETS, *OTHER_ROWS):
        assert row in text, f"missing row: {row}"


def test_every_target_has_a_verdict(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    verdicts = {t["name"]: t["verdict"] for t in results["targets"]}
    assert set(TARGETS) <= set(verdicts)
    assert all(v in ("PASS", "MISS", "shown") for v in verdicts.values())
    rows = (out / "results.md").read_text().splitlines()
    for name in TARGETS:
        (row,) = [line for line in rows if line.startswith(f"| {name} |")]
        assert row.endswith(f"**{verdicts[name]}** |"), row


def test_each_server_measured_fully(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    assert set(results["servers"]) == set(SERVERS)
    plan = results["plan"]
    for key, server in results["servers"].items():
        assert len(server["cold_start_s"]) == plan["cold_starts"], key
        assert all(s > 0 for s in server["cold_start_s"]), key
        assert server["warm"]["p50_ms"] > 0, key
        assert server["pss_bytes"] > 0, key
        assert server["peak_pss_bytes"] >= server["pss_bytes"], key
    for key in ("fn_mobilenet", "fn_mobilenet_ff_defaults", "tf_mobilenet"):
        assert set(results["servers"][key]["throughput"]) == {"1", "4", "16"}
    assert set(results["in_process_throughput"]["rates"]) == {"1", "4", "16"}
    assert set(results["modes"]) == {"float32", "dynamic", "float16", "int8"}
