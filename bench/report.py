"""The results as Markdown tables: printed to the terminal and written to ``results.md``."""

from __future__ import annotations

import statistics

from bench.targets import Target

MB = 1e6


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    """A Markdown table; ``align`` has one ``l``/``r`` per column."""
    marks = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def _size(value: int | None, detail: str) -> str:
    return f"{value / MB:.2f} MB" if value is not None else f"n/a ({detail})"


def servers_table(results: dict) -> list[str]:
    """Cold start, warm latency and memory of every server."""
    rows = []
    for r in results["servers"].values():
        cold = r["cold_start_s"]
        rows.append(
            [
                r["label"],
                f"{statistics.median(cold):.3f} s",
                f"{min(cold):.3f}-{max(cold):.3f} s",
                _ms(r["warm"]["p50_ms"]),
                _ms(r["warm"]["p99_ms"]),
                f"{r['pss_bytes'] / MB:.1f} MB",
                f"{r['peak_pss_bytes'] / MB:.1f} MB",
            ]
        )
    header = ["server", "cold start (median)", "range", "warm p50", "warm p99", "PSS", "peak PSS"]
    return _table(header, rows, "lrrrrrr")


def throughput_table(results: dict) -> list[str]:
    """Calls per second by number of concurrent clients, server CPU per request, and the
    CPU other processes on the machine used meanwhile (cores, highest over the levels)."""
    rows = []
    levels: list[str] = []
    local = results["in_process_throughput"]
    servers = results["servers"].values()
    measured = [(r["label"], r["throughput"]) for r in servers if "throughput" in r]
    pool = f"in-process Model.predict, pool of {local['pool_size']} (no HTTP)"
    measured.append((pool, local["rates"]))
    for label, rates in measured:
        levels = list(rates)
        cpu = rates[levels[0]]["cpu_ms_per_request"]
        others = max(rates[c]["others_cores"] for c in levels)
        rows.append(
            [
                label,
                *(f"{rates[c]['per_second']:.1f}" for c in levels),
                _ms(cpu) if cpu is not None else "-",
                f"{others:.2f}",
            ]
        )
    header = ["MobileNetV2, calls/s", *(f"{c} client{'s' if c != '1' else ''}" for c in levels)]
    header += ["server CPU per request", "other processes' CPU (cores)"]
    return _table(header, rows, "l" + "r" * (len(levels) + 2))


def overhead_table(results: dict) -> list[str]:
    """In-process predict against bare invoke, and HTTP against in-process."""
    rows = []
    labels = {"fn_mobilenet": "MobileNetV2 int8", "fn_digits": "bundled model"}
    for key, r in results["in_process"].items():
        over = r["predict_ms"] / r["invoke_ms"] - 1
        rows.append(
            [
                f"Model.predict vs bare invoke(), {labels[key]}",
                _ms(r["predict_ms"]),
                _ms(r["invoke_ms"]),
                f"+{_ms(r['predict_ms'] - r['invoke_ms'])} (+{100 * over:.0f}%)",
            ]
        )
    for key, r in results["in_process"].items():
        rows.append(
            [
                f"new interpreter (load + allocate + set input) vs invoke(), {labels[key]}",
                _ms(r["load_ms"]),
                _ms(r["invoke_ms"]),
                f"{r['load_ms'] / r['invoke_ms']:.1f}x an invoke",
            ]
        )
    http = results["servers"]["fn_digits"]["warm"]["p50_ms"]
    predict = results["in_process"]["fn_digits"]["predict_ms"]
    rows.append(
        [
            "HTTP p50 vs in-process predict, bundled model",
            _ms(http),
            _ms(predict),
            f"+{_ms(http - predict)}",
        ]
    )
    return _table(["comparison", "measured", "reference", "overhead"], rows, "lrrr")


def _forms_table(found: dict) -> list[str]:
    """One row per form: body size, p50, the bare invoke measured beside it, their ratio."""
    rows = [
        [
            form["label"],
            _size(found["bodies"][key], ""),
            _ms(form["p50_ms"]),
            _ms(form["invoke_ms"]),
            f"{form['ratio']:.2f}x",
        ]
        for key, form in found["forms"].items()
    ]
    return _table(["form", "request body", "p50", "bare invoke()", "ratio"], rows, "lrrrr")


def wire_table(results: dict) -> list[str]:
    """Each wire form's p50 against the bare invoke measured beside it, and the rest."""
    wire = results["wire"]
    rates = wire["throughput_4_clients"]
    lines = _forms_table(wire)
    return [
        *lines,
        "",
        f"Throughput, 4 clients, same server: V2 binary FP32 {rates['v2_binary_fp32']:.1f} req/s, "
        f"TF Serving JSON {rates['tf_json']:.1f} req/s "
        f"({rates['v2_binary_fp32'] / rates['tf_json']:.1f}x). Binary FP32 body "
        f"{wire['input_shape']} to the interpreter's input (split, decode, quantize): "
        f"{_ms(wire['parse_fp32_ms'])}.",
    ]


def reliability_table(results: dict) -> list[str]:
    """Cost per body byte of each wire form, and peak memory per configuration."""
    hostile = results["reliability"]
    cost_rows = [
        [label, _size(c["body_bytes"], ""), _size(c["peak_bytes"], ""), f"{c['per_body_byte']:.2f}"]
        for label, c in hostile["cost"].items()
    ]
    lines = _table(
        ["wire form", "body", "peak decode + run allocations", "bytes per body byte"],
        cost_rows,
        "lrrr",
    )
    runs = [
        [
            label,
            _size(run["baseline_pss_bytes"], ""),
            _size(run["peak_pss_bytes"], ""),
            ", ".join(f"{n} x {status}" for status, n in run["statuses"].items()),
        ]
        for label, run in hostile["concurrent"].items()
    ]
    upload = hostile["upload_200mb"]
    return [
        *lines,
        "",
        *_table(["configuration", "PSS before", "peak PSS", "answers"], runs, "lrrl"),
        "",
        f"A 200 MB upload refused at its header added {upload['added_bytes'] / MB:.1f} MB of "
        f"resident memory (the server stopped reading after {upload['sent_bytes'] / MB:.0f} MB "
        "were sent).",
    ]


def images_table(results: dict) -> list[str]:
    """A raw JPEG and the same picture as JSON numbers to :predict, against a bare invoke."""
    found = results["images"]
    return [
        *_forms_table(found),
        "",
        f"Decode + preprocess of the {found['picture']} alone (header check, decode, "
        f"normalise-and-quantize lookup): {_ms(found['preprocess_ms'])}.",
    ]


def modes_table(results: dict) -> list[str]:
    """Size and invoke latency per quantization mode."""
    modes = results["modes"]
    base = modes["float32"]
    rows = [
        [
            mode,
            f"{m['bytes'] / MB:.2f} MB",
            f"{m['bytes'] / base['bytes']:.2f}x",
            _ms(m["invoke_ms"]),
            f"{m['invoke_ms'] / base['invoke_ms']:.2f}x",
        ]
        for mode, m in modes.items()
    ]
    header = ["mode", ".tflite size", "vs float32", "median invoke", "vs float32"]
    return _table(header, rows, "lrrrr")


def footprint_table(results: dict) -> list[str]:
    """Upload and installed dependency sizes."""
    f = results["footprint"]
    rows = [
        ["upload (files .gcloudignore lets through)", _size(*f["upload"]), f["upload"][1]],
        ["upload, zipped", _size(*f["upload_zip"]), f["upload_zip"][1]],
        ["installed runtime dependencies (requirements.txt)", _size(*f["runtime"]), "no pip"],
        [
            "for comparison: tensorflow alone, installed",
            _size(*f["tensorflow"]),
            f["tensorflow"][1],
        ],
    ]
    return _table(["what", "size", "detail"], rows, "lrl")


def targets_table(targets: list[Target]) -> list[str]:
    """Each target with its bar, figure and verdict."""
    rows = [[t.name, t.goal, t.figure, f"**{t.verdict}**"] for t in targets]
    return _table(["target", "goal", "measured", "result"], rows, "lllr")


def markdown(results: dict, targets: list[Target]) -> str:
    """The whole report."""
    machine = results["machine"]
    plan = results["plan"]
    lines = [
        "# Benchmark results",
        "",
        f"`{results['command']}` on {machine['description']}; run {results['finished']}.",
        f"Load average before/after: {machine['load_before']} / {machine['load_after']}. "
        f"{plan['cold_starts']} cold starts per server (median shown), MobileNetV2 = "
        f"{results['mobilenet']}. The function runs in `{machine['function_python']}` "
        f"(requirements.txt only), {machine['deployed']}. Flask + TF ({machine['tensorflow']}) "
        f"and load-per-request run under gunicorn with functions-framework's defaults (1 worker, "
        f"{machine['gunicorn_threads']} threads). Everything on 127.0.0.1.",
        "",
        *(
            [
                "> Quick run (smoke test): fewer repeats and a small MobileNetV2 stand-in. "
                "These figures only show that the benchmark works; do not quote them.",
                "",
            ]
            if plan["name"] == "quick"
            else []
        ),
        "## Targets",
        "",
        *targets_table(targets),
        "",
        "## Cold start, warm latency, memory",
        "",
        "Cold start: new process to first 200 predict response. Warm: one client, keep-alive, "
        f"{plan['warm_small']} requests (bundled model) / {plan['warm_large']} (MobileNetV2) "
        "after a warm-up. PSS: whole process tree after the warm requests; peak: largest "
        "sampled PSS over the server's life.",
        "",
        *servers_table(results),
        "",
        "## Throughput (the function with its production threading, as deployed)",
        "",
        *throughput_table(results),
        "",
        "## Overhead over the physical limit",
        "",
        *overhead_table(results),
        "",
        "## Wire forms, MobileNetV2 int8, one client (the function as deployed)",
        "",
        "The same input in each wire form, answered by the same server; each p50 over "
        f"{next(iter(results['wire']['forms'].values()))['count']} requests, in alternating "
        "blocks with a bare invoke() of the same model in the benchmark process.",
        "",
        *wire_table(results),
        "",
        "## Memory under hostile load, MobileNetV2 int8",
        "",
        f"4 clients send a {results['reliability']['body_bytes'] / MB:.1f} MB TF Serving JSON "
        f"body at once ({plan['hostile_rounds']} rounds); the function as deploy.sh configures "
        "one vCPU (1 worker, 4 threads, 4 interpreters) at each --memory, and once with no "
        "budget. PSS of the whole process tree, sampled every 20 ms.",
        "",
        *reliability_table(results),
        "",
        "## Pictures in, MobileNetV2 int8 with metadata, one client",
        "",
        "The same picture as a raw JPEG body and as JSON numbers (decoded and normalised by the "
        "client), each p50 in alternating blocks with a bare invoke() of the same model.",
        "",
        *images_table(results),
        "",
        "## Quantization modes, MobileNetV2-sized network (1 interpreter thread)",
        "",
        *modes_table(results),
        "",
        "## Deployed footprint",
        "",
        *footprint_table(results),
        "",
    ]
    return "\n".join(lines)
