"""What a model's input and output tensors look like, read from the interpreter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as clients see it.

    ``name`` is the signature key (or the tensor name when the model has no signature),
    ``shape`` the shape signature with -1 for dynamic dimensions, ``dtype`` the type
    stored in the model. Quantized tensors (``scale`` > 0 on an integer type) are sent
    and returned as real float32 values; the server (de)quantizes them.
    """

    name: str
    index: int
    dtype: np.dtype
    shape: tuple[int, ...]
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        """Whether clients exchange real values that the server (de)quantizes."""
        return self.scale > 0 and self.dtype.kind in "iu"

    @property
    def client_dtype(self) -> np.dtype:
        """The dtype clients send or receive: float32 for quantized tensors."""
        return np.dtype(np.float32) if self.quantized else self.dtype

    @property
    def batch_dynamic(self) -> bool:
        """Whether the first dimension can be resized to the number of instances."""
        return len(self.shape) > 0 and self.shape[0] == -1


def spec_from_details(name: str, details: dict[str, Any]) -> TensorSpec:
    """A :class:`TensorSpec` from one entry of ``get_input_details()``/``get_output_details()``."""
    signature = details.get("shape_signature")
    if signature is None or len(signature) == 0:
        signature = details["shape"]
    scale, zero_point = details.get("quantization", (0.0, 0))
    return TensorSpec(
        name=name,
        index=int(details["index"]),
        dtype=np.dtype(details["dtype"]),
        shape=tuple(int(d) for d in signature),
        scale=float(scale),
        zero_point=int(zero_point),
    )


def read_specs(interpreter: Any) -> tuple[str | None, list[TensorSpec], list[TensorSpec]]:
    """The signature key and input/output specs of an allocated interpreter.

    With a signature def, tensors are named by its keys (``serving_default``, or the only
    signature); without one, by tensor names. Only signatures on the main subgraph can be
    served through ``invoke()``, so others are ignored.
    """
    by_index_in = {d["index"]: d for d in interpreter.get_input_details()}
    by_index_out = {d["index"]: d for d in interpreter.get_output_details()}
    signatures = _signature_maps(interpreter)
    for key in sorted(signatures, key=lambda k: k != "serving_default"):
        inputs, outputs = signatures[key]
        if set(inputs.values()) == set(by_index_in) and set(outputs.values()) == set(by_index_out):
            return (
                key,
                [spec_from_details(n, by_index_in[i]) for n, i in inputs.items()],
                [spec_from_details(n, by_index_out[i]) for n, i in outputs.items()],
            )
    return (
        None,
        [spec_from_details(d["name"], d) for d in by_index_in.values()],
        [spec_from_details(d["name"], d) for d in by_index_out.values()],
    )


def _signature_maps(interpreter: Any) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
    """signature key -> (input name -> tensor index, output name -> tensor index)."""
    maps = {}
    for key in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(key)
        maps[key] = (
            {n: int(d["index"]) for n, d in runner.get_input_details().items()},
            {n: int(d["index"]) for n, d in runner.get_output_details().items()},
        )
    return maps
