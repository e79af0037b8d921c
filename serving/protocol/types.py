"""The wire-independent request and response every protocol decodes into and encodes from.

Like KServe's ``InferRequest``/``InferResponse``: tensors are numpy arrays with a name,
the datatype the client declared (or the one they are returned in), and parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serving.protocol.datatypes import Datatype


@dataclass(frozen=True)
class Tensor:
    """One named tensor: its data (shape included), datatype and protocol parameters."""

    name: str
    data: np.ndarray
    datatype: Datatype
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        """The tensor's shape."""
        return tuple(self.data.shape)


@dataclass(frozen=True)
class RequestedOutput:
    """An output the client asked for; ``binary`` None means the request's default.

    ``classification`` k asks for the top k classes instead of the scores (V2
    classification extension).
    """

    name: str
    binary: bool | None = None
    classification: int | None = None


@dataclass(frozen=True)
class InferRequest:
    """What to run: inputs by name, which outputs, on which signature.

    ``outputs`` None means every output of the signature; ``binary_outputs`` is the
    default encoding for outputs that do not say (V2 ``binary_data_output``).
    """

    inputs: dict[str, np.ndarray]
    outputs: tuple[RequestedOutput, ...] | None = None
    signature: str | None = None
    id: str | None = None
    binary_outputs: bool = False

    def output_names(self) -> list[str] | None:
        """The requested output names in order, or None for all."""
        return None if self.outputs is None else [o.name for o in self.outputs]


@dataclass(frozen=True)
class InferResponse:
    """What the model answered, in the order the outputs are returned."""

    outputs: list[Tensor]
    model_name: str
    model_version: str
    id: str | None = None


@dataclass(frozen=True)
class Encoded:
    """A response body ready for the wire, with its content type and extra headers."""

    content: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
