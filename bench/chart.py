"""The results as one PNG: six panels, one per kind of measurement."""

from __future__ import annotations

import statistics
import textwrap
from pathlib import Path

MB = 1e6
FUNCTION, BASELINE, ANTI = "#1a73e8", "#ea4335", "#9aa0a6"


def _colour(key: str) -> str:
    if key.startswith("fn_"):
        return FUNCTION
    return BASELINE if key.startswith("tf_") else ANTI


def _bars(
    ax, labels: list[str], values: list[float], colours: list[str], unit: str, marks=None
) -> None:
    """Horizontal bars with their value written after them; ``marks`` (e.g. p99) as ticks."""
    positions = list(range(len(labels)))
    ax.barh(positions, values, color=colours)
    ax.set_yticks(positions, [textwrap.fill(label, 36) for label in labels], fontsize=7)
    ax.invert_yaxis()
    if marks is not None:
        name, points = marks
        ax.scatter(points, positions, marker="|", s=200, color="black", label=name)
        ax.legend(fontsize=7, loc="lower right")
    ends = values if marks is None else [max(v, m) for v, m in zip(values, marks[1], strict=True)]
    for y, v, end in zip(positions, values, ends, strict=True):
        ax.annotate(f" {v:.3g}{unit}", (end, y), va="center", fontsize=7)
    ax.set_xlim(right=ax.get_xlim()[1] * (3 if ax.get_xscale() == "log" else 1.2))


def write(results: dict, path: Path) -> None:
    """Draw the chart into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = results["servers"]
    keys = list(servers)
    labels = [servers[k]["label"] for k in keys]
    colours = [_colour(k) for k in keys]
    plt.rcParams["axes.titlesize"] = 10
    fig, axes = plt.subplots(3, 2, figsize=(13, 12))
    (cold, warm), (mem, rate), (modes, foot) = axes

    cold.set_xscale("log")
    _bars(
        cold, labels, [statistics.median(servers[k]["cold_start_s"]) for k in keys], colours, " s"
    )
    cold.set_title("Cold start: new process to first 200 (median, s, log)")

    warm.set_xscale("log")
    p99 = ("p99", [servers[k]["warm"]["p99_ms"] for k in keys])
    _bars(warm, labels, [servers[k]["warm"]["p50_ms"] for k in keys], colours, " ms", p99)
    warm.set_title("Warm latency over HTTP: p50 bars, p99 ticks (ms, log)")

    peak = ("peak", [servers[k]["peak_pss_bytes"] / MB for k in keys])
    _bars(mem, labels, [servers[k]["pss_bytes"] / MB for k in keys], colours, " MB", peak)
    mem.set_title("Memory: PSS of all server processes after warm requests (MB)")

    local = results["in_process_throughput"]
    lines = [(k, r["label"], r["throughput"]) for k, r in servers.items() if "throughput" in r]
    lines.append(("in_process", f"in-process, pool of {local['pool_size']}", local["rates"]))
    shades = {"fn_mobilenet_ff_defaults": "#7baaf7", "in_process": "#0b3d91"}
    for key, label, rates in lines:
        rate.plot([int(c) for c in rates], [v["per_second"] for v in rates.values()], marker="o",
                  color=shades.get(key, _colour(key)), label=textwrap.fill(label, 40))  # fmt: skip
    rate.set_yscale("log")
    rate.set_xscale("log", base=2)
    rate.set_xlabel("concurrent clients")
    rate.set_ylabel("requests/s")
    rate.legend(fontsize=6, loc="center right")
    rate.set_title("Throughput, MobileNetV2-sized network (calls/s, log)")

    names = list(results["modes"])
    sizes = [results["modes"][m]["bytes"] / MB for m in names]
    modes.bar(names, sizes, color=FUNCTION, alpha=0.5, label="size (MB)")
    modes.set_ylabel(".tflite size (MB)")
    twin = modes.twinx()
    twin.plot(names, [results["modes"][m]["invoke_ms"] for m in names], "o-", color="black")
    twin.set_ylabel("median invoke (ms, line)")
    twin.set_ylim(bottom=0)
    modes.set_title("Quantization modes: size (bars) and invoke latency (line)")

    f = results["footprint"]
    rows = [("upload (zip)", f["upload_zip"][0]), ("runtime deps", f["runtime"][0]),
            ("tensorflow alone", f["tensorflow"][0])]  # fmt: skip
    shown = [(name, value / MB) for name, value in rows if value is not None]
    foot.set_xscale("log")
    _bars(foot, [n for n, _ in shown], [v for _, v in shown],
          [FUNCTION, FUNCTION, BASELINE][: len(shown)], " MB")  # fmt: skip
    foot.set_title("Deployed footprint (MB, log)")

    fig.suptitle(f"{results['machine']['description']} ({results['plan']['name']} run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
