"""JSON bodies in and out: orjson on the fast path, and the NaN/Infinity tokens TF Serving uses.

TensorFlow Serving reads and writes ``NaN``, ``Infinity`` and ``-Infinity`` for float
tensors ("JSON conformance" in its REST docs). orjson refuses those tokens and writes
non-finite floats as ``null``, so bodies that need them take the standard library's
slower path; every other body stays on orjson (2-5x faster on large tensors, and
decoding holds the GIL).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson

from serving.errors import BadRequest

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def loads(data: bytes, *, what: str = "request body") -> Any:
    """Decode a JSON body; ``NaN``, ``Infinity`` and ``-Infinity`` are accepted as floats."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:  # also bad UTF-8, nesting over 1024, NaN tokens
        error = e
    if b"NaN" in data or b"Infinity" in data:
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            pass  # report orjson's message: it names the position
    raise BadRequest(f"malformed JSON in {what}: {error}") from error


def may_hold_booleans(data: bytes) -> bool:
    """Whether a JSON text can contain ``true`` or ``false`` at all (most tensors cannot)."""
    return b"true" in data or b"false" in data


def dumps(body: Any, *, finite: bool = True) -> bytes:
    """Encode a response body; numpy arrays are written directly.

    ``finite`` False means some array holds NaN or infinity: those are written as
    TF Serving writes them (``NaN``, ``Infinity``) instead of orjson's ``null``.
    """
    if finite:
        return orjson.dumps(body, option=_NUMPY)
    return json.dumps(_plain(body), separators=(",", ":")).encode()


def all_finite(arrays: list[np.ndarray]) -> bool:
    """Whether every float array is free of NaN and infinity (integers always are)."""
    return all(a.dtype.kind != "f" or bool(np.isfinite(a).all()) for a in arrays)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
