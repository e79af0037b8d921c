"""What a source model's signatures look like: their inputs (name, shape, dtype) and outputs.

Described without TensorFlow: loading a model is :mod:`convert.sources`, which fills these
in; calibration and evaluation read them (TensorFlow is imported only to call the model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name (signature key), shape (None where free) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype

    @property
    def shape_text(self) -> str:
        """The shape as users write it, e.g. ``(None, 8, 8, 1)``."""
        return shape_text(self.shape)


def shape_text(shape: tuple[int | None, ...]) -> str:
    """``(None, 8, 8, 1)``; a trailing comma only for rank 1, like Python's tuples."""
    return str(tuple(shape))


@dataclass
class Signature:
    """One entry point of the model: its key, named inputs and outputs, and a callable."""

    key: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]
    function: Any  # function(**{input name: tensor}) -> {output name: tensor}
    concrete: Any = None  # for the ``call`` path: the traced ``__call__`` to convert
    output_shapes: dict[str, tuple[int | None, ...]] = field(default_factory=dict)

    def predict(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The original model's outputs, by name, for one batch of inputs by name."""
        import tensorflow as tf

        args = {spec.name: tf.constant(feed[spec.name], dtype=spec.dtype) for spec in self.inputs}
        result = self.function(**args)
        return {name: np.asarray(result[name]) for name in self.outputs}
