"""Request bodies: admitted, read within a size limit and a deadline, inflated within the limit.

``MAX_REQUEST_BYTES`` bounds both what arrives on the wire and what a compressed body
inflates to. Inflation stops one byte past the limit, so a small compressed bomb answers
413 without the inflated body ever being held. A declared ``Content-Length`` over the limit
is refused before anything is read, and a refused or stalled body is never drained: the
connection's read side is shut (:func:`serving.http.watchdog.shut_reading`), so gunicorn
closes it. Before a byte is read, the request's memory cost is admitted against the
process's budget (:mod:`serving.admission`).
"""

from __future__ import annotations

import enum
import socket
import zlib
from collections.abc import Callable

import flask

from serving.errors import BadRequest, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from serving.http.watchdog import WATCHDOG, shut_reading

_CHUNK = 1 << 20  # reads per body stay few; the watchdog, not the chunk size, bounds time

# Admit a body of (at most) this many bytes once decoded from its Content-Encoding, or raise.
Admit = Callable[[int], None]


class Encoding(enum.Enum):
    """The ``Content-Encoding`` values a request body may have."""

    IDENTITY = "identity"
    GZIP = "gzip"
    DEFLATE = "deflate"  # the zlib format, as HTTP defines it (RFC 9110 8.4.1.2)


ALIASES = {"": Encoding.IDENTITY, "x-gzip": Encoding.GZIP}  # other names clients send


def encoding_of(header: str | None) -> Encoding:
    """The body's encoding; 415 naming the supported ones for anything else."""
    name = (header or "").strip().lower()
    found = ALIASES.get(name) or next((e for e in Encoding if e.value == name), None)
    if found is None:
        supported = ", ".join(e.value for e in Encoding)
        raise UnsupportedMediaType(
            f"Content-Encoding {header!r} is not supported; use one of: {supported}"
        )
    return found


def read(
    request: flask.Request, *, limit: int, timeout: float, admit: Admit, allow_empty: bool = False
) -> bytes:
    """The request body, decoded from its ``Content-Encoding``, at most ``limit`` bytes.

    Raises :class:`UnsupportedMediaType` (415), :class:`PayloadTooLarge` (413; a declared
    length over the limit before anything is read), whatever ``admit`` raises (503 when
    the memory budget is full), :class:`RequestTimeout` (408) when the body takes longer
    than ``timeout`` seconds, or :class:`BadRequest` (400) for a corrupt body, or an empty
    one unless ``allow_empty`` (a body that may be left out: the repository index's).
    """
    sock: socket.socket | None = request.environ.get("gunicorn.socket")
    encoding = encoding_of(request.headers.get("Content-Encoding"))
    declared = request.content_length
    if declared is not None and declared > limit:
        shut_reading(sock)  # not a byte of it is read, or drained
        raise PayloadTooLarge(
            f"request body of {declared} bytes is over the limit of {limit} bytes "
            "(MAX_REQUEST_BYTES)"
        )
    # A compressed body may inflate up to the limit whatever its size on the wire. A body
    # refused here (415 above, 503 from admit) is at most the limit: gunicorn's bounded
    # drain (64 KiB, 5 s) skips it and keeps the connection usable.
    admit(limit if declared is None or encoding is not Encoding.IDENTITY else declared)
    try:
        data = _read_within(request, limit, timeout, sock)
    except (PayloadTooLarge, RequestTimeout):
        shut_reading(sock)  # the rest is not read, and not drained
        raise
    if encoding is not Encoding.IDENTITY:
        data = inflate(data, encoding, limit)
    if not data.strip() and not allow_empty:
        raise BadRequest("request body is empty")
    return data


def _read_within(
    request: flask.Request, limit: int, timeout: float, sock: socket.socket | None
) -> bytes:
    """At most ``limit`` bytes of the raw body, within ``timeout`` seconds (408 after)."""
    parts: list[bytes] = []
    size = 0
    with WATCHDOG.watching(sock, timeout) as watch:
        try:
            while size <= limit:
                chunk = request.stream.read(min(_CHUNK, limit + 1 - size))
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
        except Exception as e:  # gunicorn's NoMoreData, werkzeug's ClientDisconnected, OSError
            if watch is not None and watch.expired:
                raise RequestTimeout(
                    f"request body did not arrive within {timeout:g} seconds (BODY_TIMEOUT_SECONDS)"
                ) from e
            raise _ended_early(size, request.content_length) from e
        if watch is not None and watch.expired:
            raise RequestTimeout(
                f"request body did not arrive within {timeout:g} seconds (BODY_TIMEOUT_SECONDS)"
            )
    if size > limit:
        raise PayloadTooLarge(
            f"request body is over the limit of {limit} bytes (MAX_REQUEST_BYTES)"
        )
    if request.content_length is not None and size < request.content_length:
        # The client closed early: its body is cut, and decoding it would blame the format.
        raise _ended_early(size, request.content_length)
    return b"".join(parts)


def _ended_early(size: int, declared: int | None) -> BadRequest:
    expected = f" of the {declared} bytes its Content-Length declares" if declared else " bytes"
    return BadRequest(f"request body ended after {size}{expected}")


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
