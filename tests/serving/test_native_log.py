"""serving.native_log: the runtime's native stderr lines leave the process as JSON, none lost."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from serving import logs, native_log
from serving.native_log import MAX_LINE_CHARS, captured
from tests.concurrency import at_once
from tests.conftest import REPO
from tests.server import running_server

XNNPACK_LINE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."


def json_objects(text: str) -> list[dict]:
    """Every non-empty line of ``text`` as a JSON object (fails on any other line)."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\nin:\n{text}")
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


def test_native_lines_become_json_log_lines(capfd: pytest.CaptureFixture[str]) -> None:
    with captured(backend="litert"):
        os.write(2, b"INFO: Created a delegate.\nWARNING: op fell back\nERROR: bad\nno prefix\n")
    out, err = capfd.readouterr()
    assert err == ""
    entries = json_objects(out)
    assert [(e["severity"], e["message"]) for e in entries] == [
        ("INFO", "Created a delegate."),
        ("WARNING", "op fell back"),
        ("ERROR", "bad"),
        ("WARNING", "no prefix"),
    ]
    assert entries[0]["native_log"] == "INFO: Created a delegate."
    assert {e["backend"] for e in entries} == {"litert"}


def test_descriptor_restored_and_lines_kept_when_the_block_raises(
    capfd: pytest.CaptureFixture[str],
) -> None:
    def allocate() -> None:
        with captured():
            os.write(2, b"ERROR: failed to prepare node 3\n")
            raise RuntimeError("allocation failed")

    with pytest.raises(RuntimeError, match="allocation failed"):
        allocate()
    os.write(2, b"after the capture\n")
    out, err = capfd.readouterr()
    assert err == "after the capture\n"
    (entry,) = json_objects(out)
    assert (entry["severity"], entry["message"]) == ("ERROR", "failed to prepare node 3")


def test_json_lines_go_back_to_stderr_unchanged(capfd: pytest.CaptureFixture[str]) -> None:
    line = '{"severity":"INFO","message":"already structured"}'
    with captured():
        os.write(2, (line + "\n").encode() + b"INFO: native\n")
    out, err = capfd.readouterr()
    assert err == line + "\n"
    (entry,) = json_objects(out)
    assert entry["message"] == "native"


def test_nested_capture_is_one_capture(capfd: pytest.CaptureFixture[str]) -> None:
    with captured(outer=1), captured(inner=2):
        os.write(2, b"INFO: once\n")
    os.write(2, b"restored\n")
    out, err = capfd.readouterr()
    assert err == "restored\n"
    (entry,) = json_objects(out)
    assert entry["outer"] == 1
    assert "inner" not in entry


@pytest.mark.timeout(60)
def test_more_than_a_pipe_holds_neither_blocks_nor_is_lost(
    capfd: pytest.CaptureFixture[str],
) -> None:
    count = 20_000  # about 1.3 MB, twenty times a Linux pipe's buffer
    with captured():
        for start in range(0, count, 1000):
            os.write(2, b"".join(b"INFO: line %06d\n" % i for i in range(start, start + 1000)))
        os.write(2, b"WARNING: " + b"x" * (MAX_LINE_CHARS + 10) + b"\n")
    out, err = capfd.readouterr()
    assert err == ""
    entries = json_objects(out)
    assert [e["message"] for e in entries[:-1]] == [f"line {i:06d}" for i in range(count)]
    assert entries[-1]["native_log"].endswith("... [19 more characters]")


@pytest.mark.timeout(60)
def test_other_threads_output_is_neither_lost_nor_duplicated(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Another thread writes to descriptor 2 throughout while captures come and go."""
    lines = 400
    done = threading.Event()

    def writer() -> None:
        for i in range(lines):
            os.write(2, b"other thread %d\n" % i)
            time.sleep(0.0005)
        done.set()

    def capture_repeatedly() -> int:
        captures = 0
        while not done.is_set() and captures < 10_000:
            with captured(by="capture"):
                os.write(2, b"INFO: inside\n")
            captures += 1
        return captures

    thread = threading.Thread(target=writer)
    thread.start()
    outcomes = at_once(2, capture_repeatedly)
    thread.join(timeout=30)
    assert all(isinstance(n, int) and n > 0 for n in outcomes), outcomes
    out, err = capfd.readouterr()
    entries = json_objects(out)
    plain = err.splitlines()
    rewrapped = [e["native_log"] for e in entries if e["native_log"].startswith("other")]
    seen = sorted(plain + rewrapped, key=lambda s: int(s.rsplit(" ", 1)[1]))
    assert seen == [f"other thread {i}" for i in range(lines)]
    insides = [e for e in entries if e["native_log"] == "INFO: inside"]
    assert len(insides) == sum(outcomes)


def test_first_interpreter_of_a_process_writes_only_json(digits_model: Path) -> None:
    """The delegate's native line, printed once per process, arrives as a JSON field."""
    code = (
        "import os\n"
        "from serving import select_backend\n"
        "backend = select_backend(os.environ.get('SERVING_BACKEND'))\n"
        "interpreter = backend.make_interpreter(os.environ['MODEL'], num_threads=1)\n"
        "interpreter.invoke()\n"
        "print(backend.name)\n"
    )
    env = {**os.environ, "MODEL": str(digits_model), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    *log, backend = result.stdout.decode().splitlines()
    assert result.stderr.decode() == ""
    entries = json_objects("\n".join(log))
    if backend == "litert":  # tflite-runtime 2.14 prints nothing for this model
        assert [e["native_log"] for e in entries] == [XNNPACK_LINE]
        assert entries[0]["backend"] == "litert"


@pytest.mark.timeout(120)
def test_server_writes_only_json_lines(digits_model: Path) -> None:
    """Two workers, each building its pool under concurrent requests, then shut down."""
    digit = [[[0.5]] * 8] * 8

    def predict() -> int:
        response = requests.post(
            f"{server.url}/v1/models/model:predict", json={"instances": [digit] * 8}, timeout=30
        )
        return response.status_code

    env = {"WORKERS": "2", "THREADS": "4", "INTERPRETER_POOL_SIZE": "4"}
    with running_server(digits_model, **env) as server:
        for _ in range(3):
            assert at_once(8, predict) == [200] * 8
    assert server.process.returncode is not None
    entries = json_objects(server.logs())
    assert sum(e.get("message") == "model loaded" for e in entries) >= 1
    if os.environ.get("SERVING_BACKEND", "litert") == "litert":
        natives = [e for e in entries if "native_log" in e]
        assert natives, "the XNNPACK line was not seen at all"
        assert {e["native_log"] for e in natives} == {XNNPACK_LINE}


# LiteRT's goodbye, one message per accelerator and worker. The workers exit together and
# LiteRT writes "INFO: ", the message and the newline separately, so two workers' goodbyes
# interleave mid-line ("INFO: INFO: [...] name=GPU WebGPU\n[...]"): match the messages, not lines.
EXIT_MESSAGE = re.compile(
    r"\[accelerator_registry\.cc:43\] DestroyAccelerator: ptr=0x[0-9a-f]+, "
    r"name=(?:GPU WebGPU|CpuAccelerator|NpuAccelerator)"
)
# What is left of the goodbyes once their messages are taken out: "INFO: " prefixes.
STRAY_PREFIX = re.compile(r"INFO: (?=INFO: |\{|\n|$)", re.MULTILINE)


def without_goodbyes(text: str) -> tuple[str, int]:
    """``text`` without LiteRT's exit messages (and their stray prefixes), and how many."""
    stripped, count = EXIT_MESSAGE.subn("", text)
    while True:
        stripped, stray = STRAY_PREFIX.subn("", stripped)
        if not stray:
            return stripped, count


def test_two_workers_interleaved_goodbyes_are_taken_out_and_nothing_else() -> None:
    """As a CI run captured them: two workers' exit messages mixed mid-line."""
    json_line = '{"severity":"INFO","message":"POST /v1/models/model:predict 200"}'
    interleaved = (
        f"{json_line}\n"
        "INFO: INFO: [accelerator_registry.cc:43] DestroyAccelerator: ptr=0x7fefd4006dc0, "
        "name=GPU WebGPU\n"
        "[accelerator_registry.cc:43] DestroyAccelerator: ptr=0x7fefd4001950, name=GPU WebGPU"
        "INFO: \n"
        "[accelerator_registry.cc:43] DestroyAccelerator: ptr=0x7fefd4013e70, name=CpuAccelerator"
        "INFO: \n"
        "[accelerator_registry.cc:43] DestroyAccelerator: ptr=0x7fefd4001ed0, name=CpuAccelerator\n"
    )
    rest, count = without_goodbyes(interleaved)
    assert count == 4
    assert [e["message"] for e in json_objects(rest)] == ["POST /v1/models/model:predict 200"]
    # Any other native line is still left for json_objects to refuse.
    rest, count = without_goodbyes("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert count == 0
    assert rest.startswith("INFO: Created")


@pytest.mark.skipif(
    os.environ.get("SERVING_BACKEND", "litert") != "litert", reason="CompiledModel is LiteRT's"
)
def test_a_compiled_model_server_writes_only_json_lines(engine_models, tmp_path) -> None:
    """Two workers on one packed-weights file, batches that resize the buffers, then shut
    down: every line the server writes is JSON (LiteRT's accelerator registry is one per
    process, so building or dropping a compiled model writes nothing raw to stderr), but
    for LiteRT's own goodbye: the registry it made for host-memory buffers is destroyed by
    C++ static destructors after Python has exited, which log "DestroyAccelerator"."""

    def predict(rows: int) -> int:
        response = requests.post(
            f"{server.url}/v1/models/model:predict",
            json={"instances": [[0.25] * 2048] * rows},
            timeout=30,
        )
        return response.status_code

    env = {"WORKERS": "2", "THREADS": "4", "LOG_LEVEL": "DEBUG", "WEIGHT_CACHE_DIR": str(tmp_path)}
    with running_server(engine_models / "mlp.tflite", **env) as server:
        assert at_once(8, lambda: predict(2)) == [200] * 8
        assert at_once(4, lambda: predict(3)) == [200] * 4
    assert server.process.returncode is not None
    entries = json_objects(without_goodbyes(server.logs())[0])
    loaded = [e for e in entries if e.get("message") == "model loaded"]
    assert {e["engine"] for e in loaded} == {"compiled"}


def test_closed_descriptor_two_is_no_reason_to_fail() -> None:
    """A process started with stderr closed still builds interpreters (nothing to capture)."""
    code = (
        "import os\n"
        "os.close(2)\n"
        "from serving.native_log import captured\n"
        "with captured():\n"
        "    value = 6 * 7\n"
        "print(value)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout == "42\n"


def test_litert_accelerator_discovery_is_debug_but_its_errors_are_not(capsys) -> None:
    """A CompiledModel's ~20 lines about GPU/NPU/OpenVINO plugins are DEBUG, errors stay."""
    logs.configure("DEBUG")
    try:
        native_log.emit(
            b"INFO: [gpu_registry.cc:130] Attempting to load GPU accelerator(libX.so).\n"
            b"WARNING: [compiler_plugin.cc:312] Failed to load plugin at: /p.so with error: E\n"
            b"\xe2\x94\x94 Could not load shared library /p.so\n"
            b"ERROR: [compiled_model.cc:918] Failed to build TFL interpreter\n"
            b"\xe2\x94\x94 Didn't find op for builtin opcode\n"
            b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
        )
    finally:
        logs.configure("INFO")
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["severity"], e["message"]) for e in entries] == [
        ("DEBUG", "[gpu_registry.cc:130] Attempting to load GPU accelerator(libX.so)."),
        ("DEBUG", "[compiler_plugin.cc:312] Failed to load plugin at: /p.so with error: E"),
        ("DEBUG", "\u2514 Could not load shared library /p.so"),
        ("ERROR", "[compiled_model.cc:918] Failed to build TFL interpreter"),
        ("ERROR", "\u2514 Didn't find op for builtin opcode"),
        ("INFO", "Created TensorFlow Lite XNNPACK delegate for CPU."),
    ]
