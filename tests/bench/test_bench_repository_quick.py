"""Smoke test of ``python -m bench.repository --quick``: every case and target row is there.

Only the shape of the results is checked (and the facts the benchmark relies on: the tight
limit makes every request of the round reload its version); the figures are what it reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.run import run_quick

pytestmark = [pytest.mark.slow, pytest.mark.needs_tensorflow, pytest.mark.timeout(660)]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("bench-repository")
    printed = run_quick("bench.repository", out)
    return out, json.loads((out / "repository.json").read_text()), printed


def test_writes_its_page_and_prints_it(quick_run) -> None:
    out, _, printed = quick_run
    assert sorted(p.name for p in out.iterdir()) == ["repository.json", "repository.md"]
    assert (out / "repository.md").read_text().strip() in printed


def test_cold_starts_alternate_single_and_repository(quick_run) -> None:
    _, results, _ = quick_run
    assert set(results["cold"]) == {"bundled", "mobilenet"}
    for cold in results["cold"].values():
        starts = results["plan"]["cold_starts"]
        assert [len(cold["cold_start_s"][k]) for k in ("single", "repository")] == [starts] * 2
        assert all(s > 0 for k in ("single", "repository") for s in cold["cold_start_s"][k])


def test_the_tight_round_reloads_every_request_and_the_roomy_one_none(quick_run) -> None:
    _, results, _ = quick_run
    roomy, tight = results["round_robin"]["roomy"], results["round_robin"]["tight"]
    assert roomy["ok"] == roomy["requests"] == tight["ok"] == tight["requests"]
    assert (roomy["loads"], roomy["unloads"]) == (4, 0)
    # LRU over four called in turn, with room for fewer: every request loads its version.
    assert tight["loads"] == tight["requests"]
    assert 1 <= tight["loads"] - tight["unloads"] < 4  # what is left loaded at the end
    assert tight["capacity_bytes"] < 3 * max(tight["held_bytes"].values())


def test_every_target_has_a_verdict(quick_run) -> None:
    out, results, _ = quick_run
    verdicts = [t["verdict"] for t in results["targets"]]
    assert len(verdicts) == 5
    assert set(verdicts) <= {"PASS", "MISS"}
    page = (out / "repository.md").read_text()
    assert all(t["name"] in page for t in results["targets"])
