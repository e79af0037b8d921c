"""Request bodies: read within the size limit, inflated (gzip, deflate) within the same limit.

``MAX_REQUEST_BYTES`` bounds both what arrives on the wire and what a compressed body
inflates to. Inflation stops one byte past the limit, so a small compressed bomb answers
413 without the inflated body ever being held.
"""

from __future__ import annotations

import enum
import zlib

import flask

from serving.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

_CHUNK = 1 << 16


class Encoding(enum.Enum):
    """The ``Content-Encoding`` values a request body may have."""

    IDENTITY = "identity"
    GZIP = "gzip"
    DEFLATE = "deflate"  # the zlib format, as HTTP defines it (RFC 9110 8.4.1.2)


_ALIASES = {"": Encoding.IDENTITY, "x-gzip": Encoding.GZIP}


def encoding_of(header: str | None) -> Encoding:
    """The body's encoding; 415 naming the supported ones for anything else."""
    name = (header or "").strip().lower()
    found = _ALIASES.get(name) or next((e for e in Encoding if e.value == name), None)
    if found is None:
        supported = ", ".join(e.value for e in Encoding)
        raise UnsupportedMediaType(
            f"Content-Encoding {header!r} is not supported; use one of: {supported}"
        )
    return found


def read(request: flask.Request, limit: int) -> bytes:
    """The request body, decoded from its ``Content-Encoding``, at most ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before anything is read.
    Raises :class:`PayloadTooLarge` (413), :class:`UnsupportedMediaType` (415) or
    :class:`BadRequest` (400) for an empty or corrupt body.
    """
    encoding = encoding_of(request.headers.get("Content-Encoding"))
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(
            f"request body of {declared} bytes is over the limit of {limit} bytes "
            "(MAX_REQUEST_BYTES)"
        )
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(
            f"request body is over the limit of {limit} bytes (MAX_REQUEST_BYTES)"
        )
    if encoding is not Encoding.IDENTITY:
        data = inflate(data, encoding, limit)
    if not data.strip():
        raise BadRequest("request body is empty")
    return data


def inflate(data: bytes, encoding: Encoding, limit: int) -> bytes:
    """``data`` decompressed, refusing (413) as soon as the output passes ``limit`` bytes."""
    wbits = zlib.MAX_WBITS | 16 if encoding is Encoding.GZIP else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    size = 0
    pending = data
    try:
        while True:
            room = limit + 1 - size
            chunk = inflater.decompress(pending, room)
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"{encoding.value} request body inflates to more than the limit of "
                    f"{limit} bytes (MAX_REQUEST_BYTES)"
                )
            parts.append(chunk)
            pending = inflater.unconsumed_tail
            # A full chunk may leave output inside the inflater even with no input left.
            if not pending and len(chunk) < room:
                break
    except zlib.error as e:
        raise BadRequest(f"request body is not valid {encoding.value} data: {e}") from e
    if not inflater.eof:
        raise BadRequest(f"{encoding.value} request body is truncated")
    if inflater.unused_data:
        raise BadRequest(
            f"{len(inflater.unused_data)} bytes follow the end of the {encoding.value} stream"
        )
    return b"".join(parts)
