"""Which shape a received input runs in, given the shape its model declares.

TensorFlow Serving feeds what arrives and lets the graph decide, so its clients send a
model declared ``[-1, 1]`` the values ``[1.0, 2.0, 5.0]`` (shape ``[3]``). A TFLite
interpreter resizes only the dimensions its signature leaves dynamic (-1), so a received
shape is reconciled with the declared one, in this order:

1. it fits: same rank, every fixed dimension equal (a fixed batch of 1 also takes any
   batch: such models run instance by instance);
2. a trailing dimension of 1 added (``[3]`` for ``[-1, 1]``) or dropped (``[3, 1]`` for
   ``[-1]``) makes it fit: the element count is unchanged;
3. the input takes one value per instance (``[-1]``, ``[-1, 1]``, ``[-1, 1, 1]``...): any
   shape is that many instances (``[[1, 2], [3, 4]]`` is four).

Anything else is a 400 naming both shapes. The reshape is a view (no copy). Outputs of a
reshaped request that come back in the shape it ran in are returned in the request's shape
(:func:`restore`), which is what the graph answers in TensorFlow Serving.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from serving.errors import BadRequest
from serving.model.tensors import Signature, TensorSpec, shape_text

Shape = tuple[int, ...]


def fits(declared: Sequence[int], received: Sequence[int]) -> bool:
    """Whether ``received`` runs as it is on an input declared ``declared``."""
    if len(received) != len(declared):
        return False
    fixed_one_batch = len(declared) > 0 and declared[0] == 1
    return all(
        d in (-1, r) or (i == 0 and fixed_one_batch and r >= 1)
        for i, (d, r) in enumerate(zip(declared, received, strict=True))
    )


def run_shape(declared: Sequence[int], received: Sequence[int]) -> Shape | None:
    """The shape ``received`` runs in on an input declared ``declared``; None if none."""
    received = tuple(int(d) for d in received)
    if fits(declared, received):
        return received
    if fits(declared, (*received, 1)):
        return (*received, 1)
    if received and received[-1] == 1 and fits(declared, received[:-1]):
        return received[:-1]
    if _one_value_per_instance(declared):
        return tuple(math.prod(received) if d == -1 else 1 for d in declared)
    return None


def _one_value_per_instance(declared: Sequence[int]) -> bool:
    """``[-1]``, ``[-1, 1]``, ``[-1, 1, 1]``...: a dynamic batch of single values."""
    return len(declared) > 0 and declared[0] == -1 and all(d == 1 for d in declared[1:])


def fitted(spec: TensorSpec, array: np.ndarray) -> np.ndarray:
    """``array`` in the shape it runs in on ``spec`` (a view); 400 naming both shapes."""
    shape = run_shape(spec.shape, array.shape)
    if shape is None:
        raise BadRequest(
            f"input {spec.name!r}: expected shape {shape_text(spec.shape)}, "
            f"received {shape_text(array.shape)}"
        )
    return array if shape == array.shape else array.reshape(shape)


def restore(
    signature: Signature,
    inputs: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """``outputs`` with those in the shape a reshaped request ran in put back in its shape.

    Only when every reshaped input was received in one shape and ran in one shape (with
    several, which shape an output follows would be a guess).
    """
    changes: set[tuple[Shape, Shape]] = set()
    for spec in signature.inputs:
        array = inputs.get(spec.name)
        if array is None:
            continue
        received = tuple(np.shape(array))
        ran = run_shape(spec.shape, received)
        if ran is not None and ran != received:
            changes.add((received, ran))
    if len(changes) != 1:
        return dict(outputs)
    ((received, ran),) = changes
    return {
        name: value.reshape(received) if value.shape == ran else value
        for name, value in outputs.items()
    }
