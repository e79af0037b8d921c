"""A minimal read-only FlatBuffers table reader: the few accessors TFLite metadata needs.

The deployed function reads a handful of fields from the model and its metadata buffer;
the ``flatbuffers`` package is not a dependency of every backend (tflite-runtime lacks it),
and generated code for two schemas would be thousands of lines. Every read is bounds-checked:
a malformed buffer raises :class:`FlatbufferError`, never an ``IndexError`` or a bad slice.
See https://flatbuffers.dev/internals/ for the layout.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

_U8 = struct.Struct("<B")
_I8 = struct.Struct("<b")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")


class FlatbufferError(ValueError):
    """The buffer does not hold a well-formed table where one was expected."""


class Table:
    """One table inside ``buf`` at ``pos``; fields are read by slot number (0 = first field)."""

    __slots__ = ("_buf", "_pos", "_vtable", "_vtable_size")

    def __init__(self, buf: bytes | memoryview, pos: int) -> None:
        self._buf = buf
        self._pos = pos
        self._vtable = pos - _read(_I32, buf, pos)
        self._vtable_size = _read(_U16, buf, self._vtable)

    @classmethod
    def root(cls, buf: bytes | memoryview, identifier: bytes | None = None) -> Table:
        """The root table of a finished buffer, checking its 4-byte file identifier if given."""
        if identifier is not None and bytes(buf[4:8]) != identifier:
            raise FlatbufferError(f"file identifier is not {identifier!r}")
        return cls(buf, _read(_U32, buf, 0))

    def _field(self, slot: int) -> int | None:
        entry = 4 + 2 * slot
        if entry + 2 > self._vtable_size:
            return None
        offset = _read(_U16, self._buf, self._vtable + entry)
        return self._pos + offset if offset else None

    def _target(self, slot: int) -> int | None:
        at = self._field(slot)
        return None if at is None else at + _read(_U32, self._buf, at)

    def uint8(self, slot: int, default: int = 0) -> int:
        """An unsigned byte field (also union type tags)."""
        at = self._field(slot)
        return default if at is None else _read(_U8, self._buf, at)

    def int8(self, slot: int, default: int = 0) -> int:
        """A signed byte field (the metadata schema's ``byte`` enums)."""
        at = self._field(slot)
        return default if at is None else _read(_I8, self._buf, at)

    def uint32(self, slot: int, default: int = 0) -> int:
        """A ``uint`` field."""
        at = self._field(slot)
        return default if at is None else _read(_U32, self._buf, at)

    def uint64(self, slot: int, default: int = 0) -> int:
        """A ``ulong`` field."""
        at = self._field(slot)
        return default if at is None else _read(_U64, self._buf, at)

    def string(self, slot: int) -> str | None:
        """A string field (UTF-8; undecodable bytes replaced)."""
        data = self.bytes(slot)
        return None if data is None else data.decode("utf-8", errors="replace")

    def bytes(self, slot: int) -> bytes | None:
        """A ``[ubyte]`` (or string) field's bytes."""
        at = self._target(slot)
        if at is None:
            return None
        length = _read(_U32, self._buf, at)
        _check(self._buf, at + 4, length)
        return bytes(self._buf[at + 4 : at + 4 + length])

    def table(self, slot: int) -> Table | None:
        """A sub-table field (also a union's value)."""
        at = self._target(slot)
        return None if at is None else Table(self._buf, at)

    def tables(self, slot: int) -> list[Table]:
        """A vector-of-tables field (empty when absent)."""
        at, length = self._vector(slot, 4)
        return [Table(self._buf, p + _read(_U32, self._buf, p)) for p in _positions(at, length, 4)]

    def floats(self, slot: int) -> list[float]:
        """A ``[float]`` field (empty when absent)."""
        at, length = self._vector(slot, 4)
        return [_read(_F32, self._buf, p) for p in _positions(at, length, 4)]

    def uint32s(self, slot: int) -> list[int]:
        """A ``[int]``/``[uint]`` field of non-negative values (empty when absent)."""
        at, length = self._vector(slot, 4)
        return [_read(_I32, self._buf, p) for p in _positions(at, length, 4)]

    def _vector(self, slot: int, item_size: int) -> tuple[int, int]:
        at = self._target(slot)
        if at is None:
            return 0, 0
        length = _read(_U32, self._buf, at)
        _check(self._buf, at + 4, length * item_size)
        return at + 4, length


def _positions(start: int, length: int, item_size: int) -> Iterator[int]:
    return iter(range(start, start + length * item_size, item_size))


def _check(buf: bytes | memoryview, at: int, size: int) -> None:
    if at < 0 or at + size > len(buf):
        raise FlatbufferError(f"{size} bytes at offset {at} lie outside the {len(buf)}-byte buffer")


def _read(kind: struct.Struct, buf: bytes | memoryview, at: int) -> int | float:
    _check(buf, at, kind.size)
    return kind.unpack_from(buf, at)[0]
