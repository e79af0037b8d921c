"""Reconciling a received shape with the declared one (serving/model/shapes.py)."""

from __future__ import annotations

import numpy as np
import pytest

from serving.errors import BadRequest
from serving.model.shapes import fitted, restore, run_shape
from serving.model.tensors import Signature, TensorSpec


@pytest.mark.parametrize(
    ("declared", "received", "runs_as"),
    [
        # 1. fits as it is
        ((-1, 8, 8, 1), (3, 8, 8, 1), (3, 8, 8, 1)),
        ((-1, -1), (2, 5), (2, 5)),
        ((1, 4), (3, 4), (3, 4)),  # a fixed batch of 1 runs instance by instance
        ((), (), ()),
        # 2. a trailing unit dimension added or dropped
        ((-1, 1), (3,), (3, 1)),
        ((-1, 8, 8, 1), (2, 8, 8), (2, 8, 8, 1)),
        ((-1,), (3, 1), (3,)),
        ((-1, 4), (2, 4, 1), (2, 4)),
        # 3. one value per instance: any shape, that many instances
        ((-1,), (2, 2), (4,)),
        ((-1, 1), (2, 3), (6, 1)),
        ((-1, 1, 1), (5,), (5, 1, 1)),
        ((-1, 1), (0,), (0, 1)),
        # no way to run it
        ((-1, 8, 8, 1), (1, 64), None),
        ((-1, 8, 8, 1), (8, 8, 1), None),
        ((-1, 4), (2, 3), None),
        ((-1, 4), (8,), None),  # element count alone is not enough
        ((1, 1), (2, 2), None),  # fixed dimensions are not "one value per instance"
        ((2, 1), (3,), None),
        ((-1, 1), (2, 2, 2, 1, 3), (24, 1)),
    ],
)
def test_run_shape(declared, received, runs_as):
    assert run_shape(declared, received) == runs_as


def _spec(name: str, shape: tuple[int, ...]) -> TensorSpec:
    return TensorSpec(name, 0, np.dtype(np.float32), shape)


def test_fitted_is_a_view_or_a_400_naming_both_shapes():
    x = np.arange(3, dtype=np.float32)
    ran = fitted(_spec("x", (-1, 1)), x)
    assert ran.shape == (3, 1)
    assert np.shares_memory(ran, x)
    assert fitted(_spec("x", (-1,)), x) is x
    with pytest.raises(BadRequest, match=r"input 'x': expected shape \[-1, 4\], received \[3\]"):
        fitted(_spec("x", (-1, 4)), x)


def test_restore_gives_outputs_back_in_the_request_shape():
    signature = Signature("s", (_spec("x", (-1, 1)),), (_spec("y", (-1, 1)),), main=True)
    inputs = {"x": np.zeros((2, 2))}
    outputs = {"y": np.ones((4, 1)), "other": np.ones((4, 3))}
    restored = restore(signature, inputs, outputs)
    assert restored["y"].shape == (2, 2)
    assert restored["other"].shape == (4, 3)  # not in the shape the request ran in
    # a request that fit as sent is answered as the model answers
    assert restore(signature, {"x": np.zeros((4, 1))}, outputs)["y"].shape == (4, 1)


def test_restore_does_not_guess_between_two_reshaped_inputs():
    signature = Signature(
        "s", (_spec("a", (-1, 1)), _spec("b", (-1, 1))), (_spec("y", (-1, 1)),), main=True
    )
    outputs = {"y": np.ones((4, 1))}
    same = restore(signature, {"a": np.zeros((2, 2)), "b": np.zeros((2, 2))}, outputs)
    assert same["y"].shape == (2, 2)
    mixed = restore(signature, {"a": np.zeros((2, 2)), "b": np.zeros((4,))}, outputs)
    assert mixed["y"].shape == (4, 1)
