"""Structured JSON log lines on stdout, the format Cloud Logging parses into fields.

Each line is one JSON object with ``severity`` and ``message`` plus any fields given
(``cold_start``, ``load_ms``, ``invoke_ms``, ...). Cloud Logging lifts ``severity`` and
the ``logging.googleapis.com/...`` fields out of the payload. Lines logged inside
:func:`context` (a request, the model load it triggers) also carry that context's
fields: the request's trace (:mod:`serving.trace`).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_logger = logging.getLogger("serving")
_configured = threading.Lock()
Fields = Callable[[], Mapping[str, Any]]
_context: contextvars.ContextVar[Fields | None] = contextvars.ContextVar(
    "log_context", default=None
)


class JsonFormatter(logging.Formatter):
    """Formats a record and its ``fields`` extra as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"severity": record.levelname, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (test capture, gunicorn, ...)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stdout

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure(level: str = "INFO") -> None:
    """Send the ``serving`` logger's records to stdout as JSON (idempotent)."""
    with _configured:
        if not _logger.handlers:
            handler = _StdoutHandler()
            handler.setFormatter(JsonFormatter())
            _logger.addHandler(handler)
            _logger.propagate = False
        _logger.setLevel(level)


@contextlib.contextmanager
def context(fields: Fields) -> Iterator[None]:
    """Every line logged inside (in this thread) also carries ``fields()``, read when the
    line is written (so a value that becomes known meanwhile is included)."""
    token = _context.set(fields)
    try:
        yield
    finally:
        _context.reset(token)


def log(severity: int, message: str, *, exc_info: bool = False, **fields: Any) -> None:
    """Log ``message`` at ``severity`` (a ``logging`` level) with structured ``fields``."""
    if not _logger.handlers:
        configure()
    extra = _context.get()
    if extra is not None:
        fields = {**fields, **extra()}
    _logger.log(severity, message, exc_info=exc_info, extra={"fields": fields})
