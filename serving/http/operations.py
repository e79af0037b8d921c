"""What a route is: a path template and, per method, the operation that answers it.

Data only: :mod:`serving.http.routes` holds the table the router matches, and
:mod:`serving.http.openapi` writes the document from the same table.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from serving.settings import NAME_PATTERN

if TYPE_CHECKING:
    from serving.http.endpoints import Call, Reply

Endpoint = Callable[["Call"], "Reply"]


class Tag(enum.Enum):
    """The protocol an operation belongs to (OpenAPI tags)."""

    TF_SERVING = "TensorFlow Serving REST API"
    V2 = "Open Inference Protocol (KServe V2)"
    CONTRACT = "Contract"


class Body(enum.Enum):
    """The request bodies an operation takes (their schemas are in the document)."""

    PREDICT = "predict"  # TF Serving JSON or one raw picture
    CLASSIFY = "classify"  # Classify examples or one raw picture
    REGRESS = "regress"  # Regress examples
    INFER = "infer"  # V2 JSON or JSON header + binary tensors
    INDEX = "index"  # Triton's repository index request: {} or {"ready": true}, or none


@dataclass(frozen=True)
class Operation:
    """One method of a route: the endpoint, and what the document says of it.

    ``answer`` names the 200 body's schema; ``errors`` the error statuses it documents.
    """

    endpoint: Endpoint
    operation_id: str
    summary: str
    tag: Tag
    answer: str
    errors: tuple[int, ...]
    body: Body | None = None
    query: tuple[str, ...] = ()  # query parameters, named in the document


@dataclass(frozen=True, eq=False)  # compared (and hashed) by identity: the table is fixed
class Route:
    """A path template; ``versioned`` routes are also served under ``/versions/{version}``,
    and ``labelled`` ones (TF Serving's) under ``/labels/{label}`` too."""

    path: str
    methods: dict[str, Operation]
    versioned: bool = False
    labelled: bool = False
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", _compile(self.path, self.versioned, self.labelled))

    def templates(self) -> tuple[str, ...]:
        """The OpenAPI paths of this route: plain, with the version, with the label."""
        after = [v for v, on in zip(_SUFFIXES, (self.versioned, self.labelled), strict=True) if on]
        return self.path, *(self.path.replace("{name}", "{name}" + a, 1) for a in after)


_SUFFIXES = ("/versions/{version}", "/labels/{label}")


def _compile(path: str, versioned: bool, labelled: bool) -> re.Pattern[str]:
    """``{name}`` (and an optional ``/versions/{version}`` or ``/labels/{label}``) as
    groups, the rest literal."""
    parts = re.split(r"(\{name\})", path)
    choices = [rf"/versions/(?P<version>{NAME_PATTERN})"] if versioned else []
    choices += [rf"/labels/(?P<label>{NAME_PATTERN})"] if labelled else []
    after = f"(?:{'|'.join(choices)})?" if choices else ""
    regex = "".join(
        rf"(?P<name>{NAME_PATTERN}){after}" if part == "{name}" else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


GET_ERRORS = (400, 404, 500, 503)  # 400: a repository version that is not a number
POST_ERRORS = (400, 404, 408, 413, 415, 500, 503)
