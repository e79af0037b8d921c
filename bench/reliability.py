"""Memory under hostile load: cost per body byte, concurrent bodies at the limit, a huge upload.

- Cost per body byte of each wire form: the peak of Python allocations (tracemalloc, which
  numpy reports to) while a body near the size limit is decoded and run, divided by its size.
- Peak memory (PSS of the whole process tree, sampled every 20 ms) while 4 clients send
  JSON bodies just under ``MAX_REQUEST_BYTES`` at once, several rounds, with the function as
  deploy.sh configures one vCPU at a given ``--memory``, and once with no budget at all.
- A 200 MB upload: how much resident memory the refused body adds.

Only loopback; every loop has a fixed count and every socket a timeout.
"""

from __future__ import annotations

import gc
import json
import socket
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import requests

from bench import deployed, memory, servers

LIMIT = 10 * 2**20  # MAX_REQUEST_BYTES default
PREDICT = "/v1/models/model:predict"
CONFIGS = (("no budget", None), ("deploy.sh --cpu 1 --memory 1Gi", "1Gi"),
           ("deploy.sh --cpu 1 --memory 512Mi", "512Mi"))  # fmt: skip


def _rows_body(x: np.ndarray) -> bytes:
    rows = np.round(x.astype(np.float64), 4).tolist()
    return json.dumps({"instances": rows}, separators=(",", ":")).encode()


def near_limit_json(shape: list[int]) -> tuple[bytes, np.ndarray]:
    """The largest batch of ``shape`` pictures whose TF Serving JSON body fits the limit."""
    rng = np.random.default_rng(3)
    one = rng.uniform(-1, 1, (1, *shape[1:])).astype(np.float32)
    per_image = len(_rows_body(one))
    count = max(1, LIMIT // per_image)
    x = rng.uniform(-1, 1, (count, *shape[1:])).astype(np.float32)
    return _rows_body(x), x


def cost_per_byte(model_path: Path, shape: list[int]) -> dict[str, dict]:
    """Peak decode-and-run allocations per body byte for each wire form."""
    from serving import Model
    from serving.protocol import tfserving, v2

    body, x = near_limit_json(shape)
    with Model.load(model_path) as model:
        name = model.inputs[0].name
        flat = np.round(x.astype(np.float64), 4).reshape(-1).tolist()
        v2_json = json.dumps(
            {"inputs": [{"name": name, "shape": list(x.shape), "datatype": "FP32", "data": flat}]}
        ).encode()
        head = json.dumps(
            {
                "inputs": [
                    {
                        "name": name,
                        "shape": list(x.shape),
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": x.nbytes},
                    }
                ]
            }
        ).encode()
        forms = {
            "TF Serving JSON (instances)": (body, None, tfserving),
            "V2 JSON (flat data)": (v2_json, None, v2),
            "V2 binary": (head + x.tobytes(), str(len(head)), v2),
        }
        model.run({name: x[:1]})
        results = {}
        for label, (data, header_length, protocol) in forms.items():
            gc.collect()
            tracemalloc.start()
            if protocol is v2:
                request = v2.decode_infer(data, header_length, model)
            else:
                request, _ = tfserving.decode_predict(data, model)
            model.run(request.inputs, request.signature)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del request
            results[label] = {"body_bytes": len(data), "peak_bytes": peak,
                              "per_body_byte": peak / len(data)}  # fmt: skip
    return results


def _post(url: str, body: bytes) -> int:
    try:
        return requests.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=120
        ).status_code
    except requests.RequestException:
        return 0


def concurrent_peak(
    model_path: Path, body: bytes, env: dict[str, str], log_dir: Path, rounds: int
) -> dict:
    """Peak PSS while 4 clients send ``body`` at once, ``rounds`` times; answers by status."""
    spec = servers.function_spec("fn_memory", str(model_path), body, **env)
    statuses: Counter[int] = Counter()
    with memory.PeakSampler(interval=0.02) as sampler:
        server = servers.start(spec, log_dir, on_spawn=sampler.watch)
        try:
            baseline = memory.tree_pss(server.pid)
            url = f"http://127.0.0.1:{server.port}{PREDICT}"
            for _ in range(rounds):
                results: list[int] = []

                def client(answers: list[int] = results) -> None:
                    answers.append(_post(url, body))

                threads = [threading.Thread(target=client) for _ in range(4)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=300)
                statuses.update(results)
            after = memory.tree_pss(server.pid)
        finally:
            server.stop()
    return {
        "baseline_pss_bytes": baseline,
        "peak_pss_bytes": sampler.peak,
        "after_pss_bytes": after,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "requests": 4 * rounds,
    }


def _tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


def huge_upload(model_path: Path, env: dict[str, str], log_dir: Path) -> dict:
    """Resident memory added by a 200 MB upload that is refused (413) at its header.

    ``model_path`` is a digits-shaped model (8x8x1 input), such as the bundled one."""
    spec = servers.function_spec("fn_upload", str(model_path), _rows_body(np.zeros((1, 8, 8, 1))),
                                 **env)  # fmt: skip
    server = servers.start(spec, log_dir)
    try:
        before = peak = _tree_rss(server.pid)
        sent = 0
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                f"POST {PREDICT} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {200 * 2**20}"
                "\r\n\r\n".encode()
            )
            chunk = b" " * 2**20
            try:
                for _ in range(200):
                    sock.sendall(chunk)
                    sent += len(chunk)
                    peak = max(peak, _tree_rss(server.pid))
            except OSError:
                pass  # the server shut its read side: nothing more is taken
            time.sleep(0.2)
            peak = max(peak, _tree_rss(server.pid))
    finally:
        server.stop()
    return {"rss_before": before, "rss_peak": peak, "sent_bytes": sent,
            "added_bytes": peak - before}  # fmt: skip


def measure(model_path: Path, shape: list[int], bundled: Path, log_dir: Path, rounds: int) -> dict:
    """Everything above, with the function as deploy.sh configures one vCPU: ``model_path``
    (input ``shape``) for the bodies at the limit, the ``bundled`` model for the upload."""
    body, _ = near_limit_json(shape)
    results: dict = {"body_bytes": len(body), "cost": cost_per_byte(model_path, shape)}
    runs = {}
    for label, size in CONFIGS:
        env, how = deployed.settings(1, size or "1Gi")
        if size is None:  # the same settings with a budget no request ever waits for
            env = {**env, "REQUEST_MEMORY_BUDGET_BYTES": str(2**50)}
        runs[label] = {**concurrent_peak(model_path, body, env, log_dir, rounds), "how": how}
    results["concurrent"] = runs
    env, _ = deployed.settings(1, "1Gi")
    results["upload_200mb"] = huge_upload(bundled, env, log_dir)
    return results
