"""Native runtime output on file descriptor 2, captured and re-emitted as JSON log lines.

The TFLite runtimes log from C++ straight to file descriptor 2, past Python: LiteRT 2.3.0
(and ``tensorflow.lite``) print ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``
when the first interpreter of a process applies its default delegate. Neither LiteRT 2.3.0 nor
tflite-runtime 2.14 has a setting or a Python API for that logger's minimum severity
(``TF_CPP_MIN_LOG_LEVEL`` governs TensorFlow's own logging, not TFLite's minimal logger, whose
severity is a private static of the native library). So :func:`captured` points descriptor 2
at an unbounded temporary file while the runtime runs native code that may log, restores it,
and re-emits what was written:

- a line that already is a JSON object (another thread's structured log) goes back to stderr
  unchanged;
- any other line becomes one JSON log line on stdout (``serving.logs``): its text without the
  ``INFO:``/``WARNING:``/``ERROR:`` prefix as ``message``, the severity that prefix names
  (WARNING when there is none), the raw line as ``native_log``, plus the caller's fields;
- except LiteRT's accelerator discovery, which every ``CompiledModel`` prints (about 20
  INFO and WARNING lines: GPU, NPU and OpenVINO plugins looked for, most not found): a CPU
  function never uses them, so they are DEBUG lines, kept out of the default log but there
  for whoever asks. Their errors keep their severity.

Descriptor 2 is process-wide, so captures are serialized by a lock (a nested capture in the
same thread is a no-op), descriptor 2 is restored in ``finally`` whatever the code inside
raises, and what other threads write to it meanwhile is re-emitted too, not lost. A file,
unlike a pipe, never fills up, so nothing written inside a capture can block.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from serving import logs

STDERR = 2
# One native line longer than this is cut (Cloud Logging takes up to 256 KB per entry).
MAX_LINE_CHARS = 16 * 1024
_SEVERITIES = {
    "VERBOSE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}

# The source files of LiteRT 2.3.0's accelerator discovery messages (``[gpu_registry.cc:130]``),
# and the "└ " that starts a multi-line message's continuation lines.
_DISCOVERY = (
    "[environment.cc:",
    "[accelerator_registry.cc:",
    "[npu_registry.cc:",
    "[gpu_registry.cc:",
    "[cpu_registry.cc:",
    "[compiler_plugin.cc:",
    "[compiled_model.cc:",
)
_CONTINUATION = "\u2514"

_QUIET_SECONDS = 0.00025
_lock = threading.RLock()
_depth = 0  # captures open in the thread holding _lock


def _flush_python_stderr() -> None:
    """Push Python's buffered stderr text to descriptor 2 before it is switched."""
    with contextlib.suppress(Exception):
        if sys.stderr is not None:
            sys.stderr.flush()


@contextlib.contextmanager
def captured(**fields: Any) -> Iterator[None]:
    """Capture descriptor 2 for the block, then re-emit its lines (``fields`` added to each)."""
    global _depth
    output = b""
    with _lock:
        _depth += 1
        try:
            if _depth > 1:  # the outer capture of this thread already holds descriptor 2
                yield
                return
            try:
                sink = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the with below)
            except OSError:  # nowhere to capture to: native lines stay plain, the work runs
                yield
                return
            with sink:
                _flush_python_stderr()
                try:
                    saved = os.dup(STDERR)
                except OSError:  # descriptor 2 closed: nothing to capture or restore
                    yield
                    return
                try:
                    os.dup2(sink.fileno(), STDERR)
                    try:
                        yield
                    finally:
                        _flush_python_stderr()
                        os.dup2(saved, STDERR)
                finally:
                    os.close(saved)
                    output = _drain(sink.fileno())
        finally:
            _depth -= 1
            # Re-emitted after descriptor 2 is back, before another capture can take it.
            if output:
                emit(output, **fields)


def _drain(fd: int) -> bytes:
    """Everything written to the capture file, late writes included.

    A thread that looked up descriptor 2 just before it was restored can still complete its
    write into the capture file a moment later. Reading with ``pread`` leaves the shared file
    offset alone (such a write still appends), and the file is read until two looks
    ``_QUIET_SECONDS`` apart find nothing new, so that write is re-emitted rather than lost.
    The wait is paid per interpreter built (0.5 ms), never per request.
    """
    data = b""
    quiet = 0
    while quiet < 2:
        size = os.fstat(fd).st_size
        if size > len(data):
            data += os.pread(fd, size - len(data), len(data))
            quiet = 0
        else:
            quiet += 1
            time.sleep(_QUIET_SECONDS)
    return data


def emit(output: bytes, **fields: Any) -> None:
    """Re-emit captured descriptor-2 output: JSON lines back to stderr, others as JSON logs.

    A continuation line ("└ ...") has the severity of the message it continues.
    """
    previous = logging.WARNING
    for raw in output.decode("utf-8", errors="replace").splitlines():
        line = raw.rstrip()
        if not line:
            continue
        if _is_json_object(line):
            os.write(STDERR, (line + "\n").encode())
            continue
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + f"... [{len(line) - MAX_LINE_CHARS} more characters]"
        if line.startswith(_CONTINUATION):
            severity, message = previous, line
        else:
            severity, message = _parse(line)
        previous = severity
        logs.log(severity, message, native_log=line, **fields)


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _parse(line: str) -> tuple[int, str]:
    """The severity a native prefix such as ``INFO:`` names, and the text after it."""
    prefix, sep, rest = line.partition(":")
    severity = _SEVERITIES.get(prefix.strip().upper()) if sep else None
    if severity in (logging.INFO, logging.WARNING) and rest.lstrip().startswith(_DISCOVERY):
        return logging.DEBUG, rest.strip()
    if severity is None:
        return logging.WARNING, line
    return severity, rest.strip() or line
