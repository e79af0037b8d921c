"""The Open Inference Protocol's binary tensor data extension: tensors as raw bytes after the JSON.

A body is a JSON header of ``Inference-Header-Content-Length`` bytes followed by the
data of every tensor whose ``parameters.binary_data_size`` is set, in order: little-endian,
row-major, no padding; BOOL one byte per element; BYTES elements each a 4-byte
little-endian length and the bytes. Numeric tensors are decoded without a copy.
See https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol/binary-tensor-data-extension
"""

from __future__ import annotations

import math
import struct

import numpy as np

from serving.errors import BadRequest
from serving.protocol.datatypes import Datatype

HEADER_LENGTH = "Inference-Header-Content-Length"
_LENGTH = struct.Struct("<I")


def split(data: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header and the binary tail of a body (the tail is empty without the header)."""
    if header_length is None:
        return data, memoryview(b"")
    text = header_length.strip()
    if not text.isdigit():
        raise BadRequest(f"{HEADER_LENGTH} must be a whole number of bytes, received {text!r}")
    length = int(text)
    if length == 0 or length > len(data):
        raise BadRequest(
            f"{HEADER_LENGTH} is {length} but the body has {len(data)} bytes: the JSON "
            "header must be non-empty and within the body"
        )
    view = memoryview(data)
    return bytes(view[:length]), view[length:]


class Tail:
    """The binary part of a body, handed out tensor by tensor in order."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._offset = 0

    def take(self, size: int, *, what: str) -> memoryview:
        """The next ``size`` bytes; 400 when the body has fewer left."""
        left = len(self._data) - self._offset
        if size > left:
            raise BadRequest(
                f"{what}: binary_data_size is {size} bytes but only {left} bytes of binary "
                "data are left in the body"
            )
        piece = self._data[self._offset : self._offset + size]
        self._offset += size
        return piece

    def check_consumed(self) -> None:
        """400 when bytes are left over after the last binary tensor."""
        left = len(self._data) - self._offset
        if left:
            raise BadRequest(
                f"{left} bytes of binary data follow the last binary input: the "
                "binary_data_size values must add up to the body after the JSON header"
            )


def decode(raw: memoryview, datatype: Datatype, shape: tuple[int, ...], *, what: str) -> np.ndarray:
    """A tensor of ``shape`` from its binary data."""
    count = math.prod(shape)
    if datatype is Datatype.BYTES:
        return _decode_bytes(raw, count, what=what).reshape(shape)
    size = count * (datatype.item_size or 0)
    if len(raw) != size:
        raise BadRequest(
            f"{what}: binary_data_size is {len(raw)} bytes, but shape {list(shape)} of "
            f"{datatype.value} needs {size} bytes ({count} x {datatype.item_size})"
        )
    if datatype is Datatype.BOOL:
        codes = np.frombuffer(raw, dtype=np.uint8)
        if codes.size and codes.max() > 1:
            raise BadRequest(f"{what}: BOOL elements must be bytes 0 or 1")
        return codes.view(np.bool_).reshape(shape)
    return np.frombuffer(raw, dtype=datatype.numpy.newbyteorder("<")).reshape(shape)


def _decode_bytes(raw: memoryview, count: int, *, what: str) -> np.ndarray:
    if count * _LENGTH.size > len(raw):  # checked before allocating one slot per element
        raise BadRequest(
            f"{what}: {count} BYTES elements need at least {count * _LENGTH.size} bytes, "
            f"binary_data_size is {len(raw)}"
        )
    out = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + 4 > len(raw):
            raise BadRequest(f"{what}: BYTES element {i} has no 4-byte length prefix")
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadRequest(
                f"{what}: BYTES element {i} declares {length} bytes, {len(raw) - offset} are left"
            )
        out[i] = bytes(raw[offset : offset + length])
        offset += length
    if offset != len(raw):
        raise BadRequest(
            f"{what}: {len(raw) - offset} bytes follow the last of {count} BYTES elements"
        )
    return out


def encode(array: np.ndarray) -> bytes:
    """A tensor's binary data (BYTES arrays hold ``bytes`` or ``str`` elements)."""
    if array.dtype == object:
        parts = []
        for item in array.reshape(-1):
            data = item.encode() if isinstance(item, str) else bytes(item)
            parts += (_LENGTH.pack(len(data)), data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
