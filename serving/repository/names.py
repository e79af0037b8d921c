"""The one rule for what a model name, version or label may be: one URL path segment.

Names, versions and labels come from folder names in the repository, from ``models.json``
and (later) from request paths. Every one of them goes through :func:`check`, so no value
can name a path outside the repository: ``..``, ``.``, encoded or literal slashes,
backslashes, absolute paths and empty names all fail the rule, which admits letters,
digits, ``.``, ``_`` and ``-`` only, starting with a letter or digit.

The pattern is the server's one name rule, ``serving.settings.NAME_PATTERN`` (which the
routes, /openapi.json and deploy.sh use too); versions are further restricted to positive
integers here.
"""

from __future__ import annotations

import enum
import re

from serving.errors import BadRequest
from serving.settings import NAME_PATTERN

NAME_MAX_CHARS = 128
# Positive integers without leading zeros, so that "01" and "1" are never two versions;
# at most 18 digits, which fits Triton's int64 versions.
VERSION_PATTERN = r"[1-9][0-9]{0,17}"

_NAME = re.compile(NAME_PATTERN)
_VERSION = re.compile(VERSION_PATTERN)


class Segment(enum.Enum):
    """What a path segment names; the value is how messages call it."""

    MODEL = "model name"
    VERSION = "version"
    LABEL = "version label"


class InvalidSegment(BadRequest):
    """A model name, version or label that breaks the name rule (400)."""


def check(kind: Segment, value: object) -> str:
    """``value`` as the canonical text of a ``kind``, or :class:`InvalidSegment` saying why.

    Versions may be given as ints (``2``) or text (``"2"``); names and labels as text.
    """
    if kind is Segment.VERSION:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str) and _VERSION.fullmatch(text):
            return text
        raise InvalidSegment(
            f"{kind.value} {value!r} is not a positive integer (1 to 18 digits, no leading zero)"
        )
    if isinstance(value, str) and len(value) <= NAME_MAX_CHARS and _NAME.fullmatch(value):
        return value
    raise InvalidSegment(
        f"{kind.value} {value!r} is not one URL path segment: it must be 1-{NAME_MAX_CHARS} "
        "letters, digits, '.', '_' or '-', starting with a letter or digit"
    )


def version_number(value: object) -> int:
    """A version (int or text) checked by :func:`check`, as an int."""
    return int(check(Segment.VERSION, value))
