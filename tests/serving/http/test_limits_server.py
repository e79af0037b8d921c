"""Body limits, slow bodies and the memory budget on the real server (gunicorn, raw sockets).

Every socket talks to 127.0.0.1 only, every wait has a timeout, and every loop is bounded.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.server import Server, running_server

GOOD = {"instances": [[[[0.0]] * 8] * 8]}
PREDICT = "/v1/models/model:predict"
# deploy.sh on one vCPU: one gunicorn worker, 4 threads, 4 interpreters.
AS_DEPLOYED = {"WORKERS": "1", "THREADS": "4", "INTERPRETER_POOL_SIZE": "4"}


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.settimeout(10)
    return sock


def send_head(sock: socket.socket, length: int, path: str = PREDICT) -> None:
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n".encode()
    )


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one HTTP/1.1 response."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the headers: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


@pytest.fixture(scope="module")
def server(digits_model: Path) -> Iterator[Server]:
    with running_server(digits_model, BODY_TIMEOUT_SECONDS="1.5", **AS_DEPLOYED) as running:
        assert requests.post(running.url + PREDICT, json=GOOD, timeout=30).status_code == 200
        yield running


def test_a_declared_length_over_the_limit_is_refused_at_once(server):
    """Content-Length 99999999999 with one byte sent: 413 now, not after a wait."""
    with connect(server) as sock:
        started = time.monotonic()
        send_head(sock, 99_999_999_999)
        sock.sendall(b"{")
        status, _, body = read_response(sock)
        elapsed = time.monotonic() - started
    assert status == 413
    assert json.loads(body) == {
        "error": "request body of 99999999999 bytes is over the limit of 10485760 bytes "
        "(MAX_REQUEST_BYTES)"
    }
    assert elapsed < 1.0
    assert requests.post(server.url + PREDICT, json=GOOD, timeout=30).status_code == 200


def test_a_200_mb_upload_is_refused_without_being_buffered(server):
    before = tree_rss(server.process.pid)
    peak = before
    status = None
    with connect(server) as sock:
        send_head(sock, 200 * 2**20)
        chunk = b" " * 2**20
        try:
            for _ in range(200):
                sock.sendall(chunk)
                peak = max(peak, tree_rss(server.process.pid))
        except OSError:
            pass  # the server closed its side: it does not read what it refused
        try:
            status, _, _ = read_response(sock)
        except OSError:
            status = None  # a reset may swallow the answer; the memory is what matters here
    assert status in (413, None)
    assert peak - before < 10 * 2**20, f"resident memory grew by {(peak - before) / 2**20:.1f} MB"
    assert requests.post(server.url + PREDICT, json=GOOD, timeout=30).status_code == 200


def test_stalled_bodies_get_408_and_free_their_threads(server):
    """Four clients (as many as the threads) send half a body and stall; all are cut off."""
    sockets = [connect(server) for _ in range(4)]
    try:
        for sock in sockets:
            send_head(sock, 1000)
            sock.sendall(b'{"instances": [')
        started = time.monotonic()
        good = requests.post(server.url + PREDICT, json=GOOD, timeout=30)
        waited = time.monotonic() - started
        assert good.status_code == 200
        assert waited < 1.5 + 2.0  # BODY_TIMEOUT_SECONDS plus slack, not "until they give up"
        for sock in sockets:
            status, _, body = read_response(sock)
            assert status == 408
            assert json.loads(body) == {
                "error": "request body did not arrive within 1.5 seconds (BODY_TIMEOUT_SECONDS)"
            }
    finally:
        for sock in sockets:
            sock.close()


def test_a_trickling_body_is_cut_off_at_the_deadline(server):
    """One byte every 0.2 s keeps every read alive, but not the whole body past its deadline."""
    with connect(server) as sock:
        send_head(sock, 100)
        started = time.monotonic()
        answered = threading.Event()
        outcome: list[tuple[int, dict, bytes]] = []

        def read() -> None:
            outcome.append(read_response(sock))
            answered.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for _ in range(40):  # at most 8 s of trickling
            if answered.is_set():
                break
            try:
                sock.sendall(b" ")
            except OSError:
                break
            time.sleep(0.2)
        reader.join(timeout=10)
    assert outcome, "no answer"
    assert outcome[0][0] == 408
    assert time.monotonic() - started < 1.5 + 2.0


@pytest.fixture
def budget_server(digits_model: Path) -> Iterator[Server]:
    """Room for one 16 KB JSON body at a time (20 bytes of memory per JSON body byte)."""
    with running_server(
        digits_model,
        REQUEST_MEMORY_BUDGET_BYTES=str(20 * 16_000),
        ADMISSION_TIMEOUT_SECONDS="0.5",
        BODY_TIMEOUT_SECONDS="3",
        **AS_DEPLOYED,
    ) as running:
        yield running


def test_a_request_that_does_not_fit_the_budget_in_time_gets_503_with_retry_after(budget_server):
    with connect(budget_server) as holder:
        send_head(holder, 15_000)  # admitted, then stalls while holding its share
        time.sleep(0.2)
        started = time.monotonic()
        response = requests.post(
            budget_server.url + PREDICT,
            data=json.dumps(GOOD).encode() + b" " * 14_000,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert time.monotonic() - started >= 0.4
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"].startswith("the server is busy: this request needs about ")
    # The stalled holder was cut off (408) and released its share: the next request fits.
    time.sleep(3.5)
    assert requests.post(budget_server.url + PREDICT, json=GOOD, timeout=30).status_code == 200


def test_a_request_larger_than_the_whole_budget_is_413(budget_server):
    response = requests.post(
        budget_server.url + PREDICT,
        data=json.dumps(GOOD).encode() + b" " * 30_000,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"].endswith(
        "more than this process's request budget of 320000 bytes "
        "(REQUEST_MEMORY_BUDGET_BYTES); send a smaller request or binary tensors"
    )


def test_binary_bodies_cost_less_than_json_bodies(budget_server, models: Path):
    """A 40 KB binary body fits where a 40 KB JSON body could not (2 vs 20 bytes per byte)."""
    import numpy as np

    x = np.zeros((150, 8, 8, 1), np.float32)  # 38,400 bytes of tensor data
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "pixels",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ]
        }
    ).encode()
    response = requests.post(
        budget_server.url + "/v2/models/model/infer",
        data=head + x.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_a_body_cut_short_is_400_saying_how_much_arrived(server):
    with connect(server) as sock:
        send_head(sock, 100)
        sock.sendall(b'{"instances": ')
        sock.shutdown(socket.SHUT_WR)  # the client is gone before the rest
        status, _, body = read_response(sock)
    assert status == 400
    assert json.loads(body) == {
        "error": "request body ended after 14 of the 100 bytes its Content-Length declares"
    }


def test_a_small_body_refused_unread_leaves_the_connection_usable(server):
    """415 before the body is read: the next request on the same connection is served.

    Found by the schemathesis run: cutting such a connection's read side made gunicorn
    answer the body's buffered bytes as a request of their own (an HTML 400).
    """
    body = json.dumps(GOOD).encode()
    with connect(server) as sock:
        sock.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: localhost\r\nContent-Encoding: null\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status, headers, answer = read_response(sock)
        assert status == 415
        assert headers["content-type"] == "application/json"
        assert json.loads(answer)["error"].startswith("Content-Encoding 'null' is not supported")
        send_head(sock, len(body))
        sock.sendall(body)
        status, headers, answer = read_response(sock)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert "predictions" in json.loads(answer)


def test_an_answer_that_needs_no_body_is_sent_without_waiting_for_it(server):
    """functions-framework reads the rest of a body before a non-streamed answer; ours is
    streamed, so a 404 for another model comes at once while the body never arrives."""
    with connect(server) as sock:
        send_head(sock, 1_000_000, path="/v1/models/other:predict")
        sock.sendall(b'{"instances"')
        sock.settimeout(3)
        started = time.monotonic()
        status, headers, answer = read_response(sock)
    assert status == 404
    assert json.loads(answer)["error"].startswith("model 'other' not found")
    assert int(headers["content-length"]) == len(answer)
    assert time.monotonic() - started < 1.0
