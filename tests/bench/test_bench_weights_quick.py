"""Smoke test of ``python -m bench.weights --quick``: every case, engine and target row is there.

Only the shape of the results is checked; the figures are what the benchmark reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.run import run_quick

CASES = ("bundled", "float32_local", "float32_gcs", "int8_local", "int8_gcs")

pytestmark = [pytest.mark.slow, pytest.mark.needs_tensorflow, pytest.mark.timeout(660)]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("bench-weights")
    printed = run_quick("bench.weights", out)
    return out, json.loads((out / "weights.json").read_text()), printed


def test_writes_its_page_and_prints_it(quick_run) -> None:
    out, _, printed = quick_run
    assert sorted(p.name for p in out.iterdir()) == ["weights.json", "weights.md"]
    assert (out / "weights.md").read_text().strip() in printed


def test_every_case_is_measured_with_all_its_workers(quick_run) -> None:
    _, results, _ = quick_run
    for cpus, config in results["after"]["configs"].items():
        assert set(config["cases"]) == set(CASES)
        workers = int(cpus)  # deploy.sh: one gunicorn worker per vCPU
        for key, case in config["cases"].items():
            assert case["peak_bytes"] >= case["steady_bytes"] > 0, key
            assert case["cold_start_s"] > 0, key
            assert set(case["per_second"]) == {"1", "4", "16"}, key
            assert len(case["workers"]) == workers, key
            engines = {w["engine"] for w in case["workers"]}
            assert engines == ({"interpreter"} if key == "bundled" else {"compiled"}), key
            if key != "bundled":
                caches = sorted(w["weight_cache"] for w in case["workers"])
                assert caches == sorted(["packed"] + ["mapped"] * (workers - 1)), key  # once


def test_every_target_has_a_verdict(quick_run) -> None:
    out, results, _ = quick_run
    names = [t["name"] for t in results["targets"]]
    assert sum(n.startswith("memory beyond the bundled model's") for n in names) == 8
    assert sum(n.startswith("further compiled engine") for n in names) == 2
    assert any(n.startswith("MobileNetV2 int8 p50") for n in names)
    assert any(n.startswith("MobileNetV2 int8 throughput") for n in names)
    text = (out / "weights.md").read_text()
    for target in results["targets"]:
        assert target["verdict"] in ("PASS", "MISS", "shown")
        assert f"| {target['name']} |" in text
        assert f"**{target['verdict']}** |" in text


def test_further_engines_and_workers_are_measured(quick_run) -> None:
    _, results, _ = quick_run
    for mode, builds in results["after"]["engine_builds"].items():
        assert builds["compiled"]["cache"] == ["packed", "mapped"], mode
        assert builds["interpreter"]["further_ms"] > 0, mode
    assert set(results["after"]["workers"]["per_second"]) == {"1", "2"}
    assert set(results["after"]["mobilenet"]["per_second_4_clients"]) == {
        "compiled", "interpreter", "compiled, 4 workers",
    }  # fmt: skip
