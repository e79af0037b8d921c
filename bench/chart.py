"""The results as one PNG: six panels, one per kind of measurement."""

from __future__ import annotations

import statistics
from pathlib import Path

MB = 1e6
FUNCTION, BASELINE, ANTI = "#1a73e8", "#ea4335", "#9aa0a6"


def _colour(key: str) -> str:
    return FUNCTION if key.startswith("fn_") else BASELINE if key.startswith("tf_") else ANTI


def _bars(ax, labels: list[str], values: list[float], colours: list[str], unit: str) -> None:
    positions = range(len(labels))
    ax.barh(positions, values, color=colours)
    ax.set_yticks(list(positions), labels, fontsize=7)
    ax.invert_yaxis()
    for y, v in zip(positions, values, strict=True):
        ax.annotate(f" {v:.3g}{unit}", (v, y), va="center", fontsize=7)


def write(results: dict, path: Path) -> None:
    """Draw the chart into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = results["servers"]
    keys = list(servers)
    labels = [servers[k]["label"] for k in keys]
    colours = [_colour(k) for k in keys]
    fig, axes = plt.subplots(3, 2, figsize=(13, 12))
    (cold, warm), (mem, rate), (modes, foot) = axes

    _bars(
        cold, labels, [statistics.median(servers[k]["cold_start_s"]) for k in keys], colours, " s"
    )
    cold.set_xscale("log")
    cold.set_title("Cold start: new process to first 200 (median, s, log)")

    _bars(warm, labels, [servers[k]["warm"]["p50_ms"] for k in keys], colours, " ms")
    warm.scatter([servers[k]["warm"]["p99_ms"] for k in keys], range(len(keys)), marker="|",
                 s=200, color="black", label="p99")  # fmt: skip
    warm.set_xscale("log")
    warm.legend(fontsize=7)
    warm.set_title("Warm latency over HTTP: p50 bars, p99 ticks (ms, log)")

    _bars(mem, labels, [servers[k]["pss_bytes"] / MB for k in keys], colours, " MB")
    mem.scatter([servers[k]["peak_pss_bytes"] / MB for k in keys], range(len(keys)), marker="|",
                s=200, color="black", label="peak")  # fmt: skip
    mem.legend(fontsize=7)
    mem.set_title("Memory: PSS of all server processes after warm requests (MB)")

    for key, r in servers.items():
        if "throughput" in r:
            levels = list(r["throughput"])
            rate.plot([int(c) for c in levels], list(r["throughput"].values()), marker="o",
                      color=_colour(key), label=r["label"])  # fmt: skip
    rate.set_xscale("log", base=2)
    rate.set_xlabel("concurrent clients")
    rate.set_ylabel("requests/s")
    rate.legend(fontsize=7)
    rate.set_title("Throughput, MobileNetV2-sized network")

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
    _bars(foot, [n for n, _ in shown], [v for _, v in shown],
          [FUNCTION, FUNCTION, BASELINE][: len(shown)], " MB")  # fmt: skip
    foot.set_xscale("log")
    foot.set_title("Deployed footprint (MB, log)")

    fig.suptitle(f"{results['machine']['description']} ({results['plan']['name']} run)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
