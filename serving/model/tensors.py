"""What a model's signatures, inputs and outputs look like, read from the interpreter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from serving.errors import BadRequest

DEFAULT_SIGNATURE = "serving_default"


class SignatureRunner(Protocol):
    """One signature of an interpreter, run by name (LiteRT's ``SignatureRunner``)."""

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]: ...

    def get_input_details(self) -> dict[str, dict[str, Any]]: ...

    def get_output_details(self) -> dict[str, dict[str, Any]]: ...


class Interpreter(Protocol):
    """The part of the TFLite ``Interpreter`` API the server uses (not thread-safe)."""

    def allocate_tensors(self) -> None: ...

    def get_input_details(self) -> list[dict[str, Any]]: ...

    def get_output_details(self) -> list[dict[str, Any]]: ...

    def resize_tensor_input(
        self, input_index: int, tensor_size: Sequence[int], strict: bool = ...
    ) -> None: ...

    def set_tensor(self, tensor_index: int, value: np.ndarray) -> None: ...

    def get_tensor(self, tensor_index: int) -> np.ndarray: ...

    def tensor(self, tensor_index: int) -> Callable[[], np.ndarray]: ...

    def invoke(self) -> None: ...

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]: ...

    def get_signature_runner(self, signature_key: str | None = ...) -> SignatureRunner: ...


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
        """The dtype clients send or receive real values in: float32 for quantized tensors."""
        return np.dtype(np.float32) if self.quantized else self.dtype

    @property
    def batch_dynamic(self) -> bool:
        """Whether the first dimension can be resized to the number of instances."""
        return len(self.shape) > 0 and self.shape[0] == -1


@dataclass(frozen=True)
class Signature:
    """A named entry point: its inputs and outputs.

    ``main`` is True for the signature on the interpreter's main subgraph (or the whole
    model when it has no signature def), which runs through ``invoke()`` directly; other
    signatures run through the interpreter's signature runners.
    """

    key: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    main: bool

    def input(self, name: str) -> TensorSpec | None:
        """The input called ``name``, if any."""
        return next((spec for spec in self.inputs if spec.name == name), None)

    def known_input(self, name: str) -> TensorSpec:
        """The input called ``name``; a 400 naming the inputs there are when there is none.

        Wire decoders ask this before they look at the input's shape or values: a wrong
        name is the first thing to fix, and a size checked against no input misleads.
        """
        spec = self.input(name)
        if spec is None:
            names = ", ".join(known.name for known in self.inputs)
            raise BadRequest(f"unknown input {name!r}; the model's inputs are: {names}")
        return spec


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


def read_signatures(interpreter: Interpreter) -> tuple[Signature, ...]:
    """Every signature of an allocated interpreter, the default one first.

    The default is ``serving_default`` when present, else the signature on the main
    subgraph, else the first. A model without a signature def has one signature,
    ``serving_default``, whose tensors are named by their tensor names.
    """
    main_in = {int(d["index"]): d for d in interpreter.get_input_details()}
    main_out = {int(d["index"]): d for d in interpreter.get_output_details()}
    found: list[Signature] = []
    main_taken = False
    for key in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(key)
        ins, outs = runner.get_input_details(), runner.get_output_details()
        # The signature whose tensors are exactly the main subgraph's runs via invoke().
        main = (
            not main_taken
            and {int(d["index"]) for d in ins.values()} == set(main_in)
            and {int(d["index"]) for d in outs.values()} == set(main_out)
        )
        main_taken = main_taken or main
        found.append(
            Signature(
                key=key,
                inputs=tuple(spec_from_details(n, d) for n, d in ins.items()),
                outputs=tuple(spec_from_details(n, d) for n, d in outs.items()),
                main=main,
            )
        )
    if not found:
        found.append(
            Signature(
                key=DEFAULT_SIGNATURE,
                inputs=tuple(spec_from_details(d["name"], d) for d in main_in.values()),
                outputs=tuple(spec_from_details(d["name"], d) for d in main_out.values()),
                main=True,
            )
        )
    found.sort(key=lambda s: (s.key != DEFAULT_SIGNATURE, not s.main))
    return tuple(found)


def shape_text(shape: Sequence[int]) -> str:
    """A shape as the client writes it, with -1 for a dynamic dimension: ``[-1, 8, 8, 1]``."""
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"
