"""The targets bench/results.md reports against, checked on one run's figures.

Every target yields a row, met or not: a miss is a ``MISS`` with its figure, never dropped.
Ratios compare figures measured in the same run. Targets come from issues 2, 3, 5, 8 and 11.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

MB = 1e6


@dataclass(frozen=True)
class Target:
    """One target: what, the bar, the measured figure and whether it is met (None: shown)."""

    name: str
    goal: str
    figure: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        return "shown" if self.passed is None else "PASS" if self.passed else "MISS"


def cold(results: dict, key: str) -> float:
    """Median cold start of one server, seconds."""
    return statistics.median(results["servers"][key]["cold_start_s"])


def evaluate(results: dict) -> list[Target]:
    """All targets, in the order bench/results.md lists them."""
    servers = results["servers"]
    fn, tf = servers["fn_digits"], servers["tf_digits"]
    fn_cold, tf_cold = cold(results, "fn_digits"), cold(results, "tf_digits")
    cold_ratio = tf_cold / fn_cold
    pss_ratio = tf["pss_bytes"] / fn["pss_bytes"]
    large = results["in_process"]["fn_mobilenet"]
    predict_over = large["predict_ms"] / large["invoke_ms"] - 1
    http_over = fn["warm"]["p50_ms"] - results["in_process"]["fn_digits"]["predict_ms"]
    rate = servers["fn_mobilenet"]["throughput"]
    one, four = rate["1"]["per_second"], rate["4"]["per_second"]
    scaling = four / one
    anti_small = servers["load_per_request_digits"]["warm"]["p50_ms"] / fn["warm"]["p50_ms"]
    anti_large = (
        servers["load_per_request_mobilenet"]["warm"]["p50_ms"]
        / servers["fn_mobilenet"]["warm"]["p50_ms"]
    )
    q = results["modes"]
    int8_ms, float_ms, dynamic_ms = (q[m]["invoke_ms"] for m in ("int8", "float32", "dynamic"))
    return [
        Target(
            "cold start, bundled model: function vs Flask + TF SavedModel",
            ">= 10x faster",
            f"{cold_ratio:.1f}x ({fn_cold:.3f} s vs {tf_cold:.2f} s)",
            cold_ratio >= 10,
        ),
        Target(
            "cold start, bundled model: function",
            "< 0.6 s",
            f"{fn_cold:.3f} s",
            fn_cold < 0.6,
        ),
        Target(
            "memory (PSS, all processes), bundled model: function vs Flask + TF",
            ">= 6x lower",
            f"{pss_ratio:.1f}x ({fn['pss_bytes'] / MB:.0f} MB vs {tf['pss_bytes'] / MB:.0f} MB)",
            pss_ratio >= 6,
        ),
        Target(
            "memory (PSS, all processes), bundled model: function",
            "<= 100 MB",
            f"{fn['pss_bytes'] / MB:.1f} MB",
            fn["pss_bytes"] <= 100 * MB,
        ),
        Target(
            "in-process predict vs bare invoke(), MobileNetV2 int8",
            "within 5%",
            f"+{100 * predict_over:.1f}% ({large['predict_ms']:.2f} ms vs "
            f"{large['invoke_ms']:.2f} ms)",
            predict_over <= 0.05,
        ),
        *wire_targets(results["wire"]),
        *reliability_targets(results["reliability"]),
        *image_targets(results["images"]),
        Target(
            "HTTP p50 overhead over in-process predict, bundled model",
            "< 2 ms",
            f"{http_over:.2f} ms",
            http_over < 2,
        ),
        Target(
            "throughput, 4 vs 1 concurrent clients, MobileNetV2 int8",
            ">= 1.6x",
            f"{scaling:.2f}x ({four:.1f} vs {one:.1f} req/s)",
            scaling >= 1.6,
        ),
        Target(
            "load-per-request anti-pattern, warm p50 vs the function",
            "shown as a ratio",
            f"{anti_small:.2f}x the function's p50 (bundled model), "
            f"{anti_large:.2f}x (MobileNetV2 int8)",
            None,
        ),
        Target(
            "int8 invoke faster than float32 and dynamic, MobileNetV2 (issue 3)",
            "int8 fastest",
            f"int8 {int8_ms:.1f} ms, float32 {float_ms:.1f} ms, dynamic {dynamic_ms:.1f} ms",
            int8_ms < min(float_ms, dynamic_ms),
        ),
    ]


def wire_targets(wire: dict) -> list[Target]:
    """Issue 8: binary tensors at the interpreter's speed (MobileNetV2 int8, one client)."""
    forms = wire["forms"]
    fp32, int8, tf = forms["v2_binary_fp32"], forms["v2_binary_int8"], forms["tf_json"]
    rates = wire["throughput_4_clients"]
    rate_ratio = rates["v2_binary_fp32"] / rates["tf_json"]
    return [
        Target(
            "V2 binary FP32 in, binary out: p50 vs bare invoke(), MobileNetV2 int8",
            "<= 1.3x",
            f"{fp32['ratio']:.2f}x ({fp32['p50_ms']:.2f} ms vs {fp32['invoke_ms']:.2f} ms); "
            f"TF Serving JSON {tf['ratio']:.1f}x",
            fp32["ratio"] <= 1.3,
        ),
        Target(
            "V2 binary raw INT8 in: p50 vs bare invoke(), MobileNetV2 int8",
            "<= 1.15x",
            f"{int8['ratio']:.2f}x ({int8['p50_ms']:.2f} ms vs {int8['invoke_ms']:.2f} ms)",
            int8["ratio"] <= 1.15,
        ),
        Target(
            "throughput at 4 clients: V2 binary vs TF Serving JSON, MobileNetV2 int8",
            ">= 5x",
            f"{rate_ratio:.1f}x ({rates['v2_binary_fp32']:.1f} vs {rates['tf_json']:.1f} req/s)",
            rate_ratio >= 5,
        ),
        Target(
            "224x224x3 FP32 binary body to the interpreter's input",
            "< 0.3 ms",
            f"{wire['parse_fp32_ms']:.3f} ms",
            wire["parse_fp32_ms"] < 0.3,
        ),
    ]


def reliability_targets(hostile: dict) -> list[Target]:
    """Issue 11: memory bounded under concurrent bodies at the limit and huge uploads."""
    runs = hostile["concurrent"]
    rows = []
    for label, limit in (("512Mi", 512 * 2**20), ("1Gi", 2**30)):
        run = runs[f"deploy.sh --cpu 1 --memory {label}"]
        peak = run["peak_pss_bytes"]
        served = ", ".join(f"{n} x {status}" for status, n in run["statuses"].items())
        rows += [
            Target(
                f"peak memory, 4 concurrent JSON bodies at the limit, --cpu 1 --memory {label}",
                "<= 300 MB",
                f"{peak / MB:.0f} MB (answers: {served})",
                peak <= 300 * MB,
            ),
            Target(
                f"the budget keeps that peak below the configured memory ({label})",
                f"< {limit / MB:.0f} MB",
                f"{peak / MB:.0f} MB, {100 * peak / limit:.0f}% of it",
                peak < limit,
            ),
        ]
    upload = hostile["upload_200mb"]["added_bytes"]
    rows.append(
        Target(
            "resident memory added by a 200 MB upload",
            "< 10 MB",
            f"{upload / MB:.1f} MB",
            upload < 10 * MB,
        )
    )
    return rows


def image_targets(found: dict) -> list[Target]:
    """Issue 10: a raw JPEG at close to the interpreter's speed (MobileNetV2 int8)."""
    raw, numbers = found["forms"]["raw_jpeg"], found["forms"]["json_numbers"]
    return [
        Target(
            "raw 224x224 JPEG to :predict: p50 vs bare invoke(), MobileNetV2 int8",
            "<= 1.6x",
            f"{raw['ratio']:.2f}x ({raw['p50_ms']:.2f} ms vs {raw['invoke_ms']:.2f} ms); "
            f"as JSON numbers {numbers['ratio']:.1f}x",
            raw["ratio"] <= 1.6,
        ),
        Target(
            "JPEG decode + preprocess alone, MobileNetV2 int8 input",
            "< 1.5 ms",
            f"{found['preprocess_ms']:.3f} ms",
            found["preprocess_ms"] < 1.5,
        ),
    ]
