"""Wire forms side by side: one input as TF Serving JSON, V2 JSON, V2 binary FP32 and raw INT8.

One function server (MobileNetV2 int8, as deployed) answers each form; every form's p50 is
measured in alternating blocks with a bare ``invoke()`` of the same model in this process,
so each ratio compares figures taken under the same machine load. Throughput at 4 clients
compares the binary and the TF Serving JSON forms on the same server. The parse row times
what the server does to a binary FP32 body before ``invoke()``: split it, decode the JSON
header and the tensor, and quantize it into the interpreter's input buffer.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import latency, servers, throughput
from bench.plan import Plan

HEADER = "Inference-Header-Content-Length"
V2_PATH = "/v2/models/model/infer"
TF_PATH = "/v1/models/model:predict"


@dataclass(frozen=True)
class Form:
    """One way to send the same input: path, body and headers."""

    key: str
    label: str
    path: str
    body: bytes
    headers: dict[str, str]


def binary_body(header: dict, blob: bytes) -> tuple[bytes, dict[str, str]]:
    """A V2 binary-extension body (JSON header, then the tensor bytes) and its header."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return head + blob, {HEADER: str(len(head)), "Content-Type": "application/octet-stream"}


def forms(x: np.ndarray, tf_json: bytes, name: str, scale: float, zero_point: int) -> list[Form]:
    """The four forms of input ``x`` (float32, batch of one) for the input called ``name``;
    outputs binary where the form allows it."""
    shape = list(x.shape)
    binary_out = {"parameters": {"binary_data_output": True}}
    v2_json = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": shape,
                    "datatype": "FP32",
                    "data": np.round(x.astype(np.float64), 4).reshape(-1).tolist(),
                }
            ]
        },
        separators=(",", ":"),
    ).encode()

    def binary(datatype: str, data: np.ndarray) -> tuple[bytes, dict[str, str]]:
        size = {"binary_data_size": data.nbytes}
        tensor = {"name": name, "shape": shape, "datatype": datatype, "parameters": size}
        return binary_body({"inputs": [tensor], **binary_out}, data.tobytes())

    fp32, fp32_headers = binary("FP32", x)
    codes = np.clip(np.rint(x / scale) + zero_point, -128, 127).astype(np.int8)
    int8, int8_headers = binary("INT8", codes)
    json_headers = {"Content-Type": "application/json"}
    return [
        Form("tf_json", "TF Serving JSON (instances)", TF_PATH, tf_json, json_headers),
        Form("v2_json", "V2 JSON (FP32 data)", V2_PATH, v2_json, json_headers),
        Form("v2_binary_fp32", "V2 binary FP32 in, binary out", V2_PATH, fp32, fp32_headers),
        Form("v2_binary_int8", "V2 binary raw INT8 in, binary out", V2_PATH, int8, int8_headers),
    ]


def _input_quantization(model_path: Path) -> tuple[str, float, int]:
    from serving.model import Model

    with Model.load(model_path) as model:
        (spec,) = model.inputs
        return spec.name, spec.scale, spec.zero_point


def parse_ms(model_path: Path, form: Form, count: int) -> float:
    """Median ms to turn ``form``'s body into the interpreter's input, as the server does."""
    from serving.model import Model
    from serving.model.quantization import check_finite, quantize_into
    from serving.protocol import v2

    with Model.load(model_path) as model:
        (spec,) = model.inputs
        interpreter = model.backend.make_interpreter(str(model_path), num_threads=1)
        interpreter.allocate_tensors()
        scratch = np.empty(tuple(max(1, d) for d in spec.shape), np.float32)

        def parse() -> None:
            request = v2.decode_infer(form.body, form.headers.get(HEADER), model)
            array = request.inputs[spec.name]
            check_finite(array, what="input")
            buffer = interpreter.tensor(spec.index)()
            quantize_into(buffer, array, spec.scale, spec.zero_point, scratch=scratch)
            del buffer

        return latency.median_ms(parse, count)


def against_invoke(
    port: int, form: Form, invoke: Callable[[], object], warmup: int, count: int
) -> dict:
    """``form``'s p50 over ``count`` requests, in alternating blocks with a bare ``invoke``."""
    client = latency.Client(port)
    try:
        for _ in range(warmup):
            client.post(form.path, form.body, form.headers)
        p50_ms, invoke_ms = latency.alternating(
            functools.partial(client.post, form.path, form.body, form.headers), invoke, count
        )
    finally:
        client.close()
    return {
        "label": form.label,
        "p50_ms": p50_ms,
        "invoke_ms": invoke_ms,
        "ratio": p50_ms / invoke_ms,
        "count": count,
    }


def measure(
    model_path: Path, tf_json: bytes, x: np.ndarray, env: dict[str, str], plan: Plan, log_dir: Path
) -> dict:
    """p50 of each form against a bare invoke, throughput at 4 clients, and the parse time."""
    name, scale, zero_point = _input_quantization(model_path)
    all_forms = forms(x, tf_json, name, scale, zero_point)
    bare = latency.bare_interpreter(str(model_path), x)
    spec = servers.function_spec("fn_wire", str(model_path), tf_json, **env)
    count = max(plan.warm_large, 60 if plan.name == "full" else plan.warm_large)
    results: dict = {"forms": {}, "bodies": {f.key: len(f.body) for f in all_forms}}
    server = servers.start(spec, log_dir)
    try:
        for form in all_forms:
            results["forms"][form.key] = against_invoke(
                server.port, form, bare.invoke, plan.warmup, count
            )
        rates = {}
        for form in (f for f in all_forms if f.key in ("tf_json", "v2_binary_fp32")):
            runs = [
                throughput.run(
                    server.port,
                    server.pid,
                    form.path,
                    form.body,
                    4,
                    plan.throughput_requests(4) * (4 if form.key != "tf_json" else 1),
                    form.headers,
                )
                for _ in range(plan.throughput_repeats)
            ]
            rates[form.key] = statistics.median(r.per_second for r in runs)
        results["throughput_4_clients"] = rates
    finally:
        server.stop()
    fp32 = next(f for f in all_forms if f.key == "v2_binary_fp32")
    results["parse_fp32_ms"] = parse_ms(model_path, fp32, plan.invokes * 5)
    results["input_shape"] = list(x.shape)
    return results
