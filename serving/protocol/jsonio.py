"""JSON bodies in and out: orjson on the fast path, and the NaN/Infinity tokens TF Serving uses.

TensorFlow Serving reads and writes ``NaN``, ``Infinity`` and ``-Infinity`` for float
tensors ("JSON conformance" in its REST docs). orjson refuses those tokens and writes
non-finite floats as ``null``, so bodies that need them take the standard library's
slower path; every other body stays on orjson (2-5x faster on large tensors, and
decoding holds the GIL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from serving.errors import BadRequest
from serving.model.arrays import to_array

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class Document:
    """A decoded JSON body, and whether its text can hold ``true``/``false`` at all.

    The one place decoders learn whether to scan values for booleans mixed among numbers
    (numpy would take them as 1 and 0): most tensor bodies have no such literal, and their
    values skip the scan. Every JSON value becomes an array through :meth:`array`.
    """

    value: Any
    may_hold_booleans: bool

    def array(self, value: Any, *, what: str) -> np.ndarray:
        """``value`` (part of this body) as a numeric or boolean array; 400 naming ``what``."""
        return to_array(value, what=what, booleans_possible=self.may_hold_booleans)


def parse(data: bytes, *, what: str = "request body") -> Document:
    """Decode a JSON body; ``NaN``, ``Infinity`` and ``-Infinity`` are accepted as floats."""
    return Document(_loads(data, what), b"true" in data or b"false" in data)


def _loads(data: bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:  # also bad UTF-8, nesting over 1024, NaN tokens
        error = e
    if b"NaN" in data or b"Infinity" in data:
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            pass  # report orjson's message: it names the position
    try:
        data.decode()
    except UnicodeDecodeError as e:
        # orjson says "str is not valid UTF-8: surrogates not allowed" of any bad byte.
        reason = f"not valid UTF-8 at byte {e.start} (0x{data[e.start]:02x})"
    else:
        reason = str(error)
    raise BadRequest(f"malformed JSON in {what}: {reason}") from error


def kind(value: Any) -> str:
    """What sort of JSON value ``value`` is, in JSON's words (``a number``, ``null``)."""
    return {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def shown(value: Any, limit: int = 80) -> str:
    """A JSON value for an error message as its sender wrote it: a string in quotes, anything
    else as JSON text (``true``, ``null``, ``["FP32"]``, never Python's ``True``, ``None``,
    ``['FP32']``), cut to about ``limit`` characters."""
    if isinstance(value, str):
        text = f"'{value}'"
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:  # not from a JSON body (no such caller): still one line
            text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


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
