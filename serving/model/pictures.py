"""Decoded pixels (uint8, height x width x channels) to a picture input's values, by lookup table.

A picture input (``[batch, height, width, 1|3]``) takes ``(pixel - mean) / std`` per channel,
quantized with the tensor's scale and zero point when it is int8/uint8. Pixels are bytes,
so normalise-and-quantize is a 256-entry table per channel, built once per input, and
preparing a picture is one gather per channel. No Pillow here: :mod:`serving.protocol.images`
decodes.
"""

from __future__ import annotations

import threading

import numpy as np

from serving.errors import BadRequest
from serving.model.metadata import Normalization
from serving.model.quantization import quantize_into
from serving.model.tensors import TensorSpec

NO_NORMALIZATION_HINT = (
    "set IMAGE_MEAN and IMAGE_STD (pixel values 0-255 are fed as (pixel - mean) / std), or "
    "convert the model with normalisation metadata (python -m convert --mean M --std S)"
)


class PictureInput:
    """One picture input of one signature: its size, channels and pixel lookup table."""

    def __init__(self, signature: str, spec: TensorSpec, normalization: Normalization | None):
        self.signature = signature
        self.spec = spec
        self.normalization = normalization
        self.height = spec.shape[1] if spec.shape[1] > 0 else None
        self.width = spec.shape[2] if spec.shape[2] > 0 else None
        self.channels = spec.shape[3]
        self._table: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def dtype(self) -> np.dtype:
        """What the table holds: float32 values, or the tensor's own codes when quantized
        (which :meth:`serving.model.Model.run` passes through unchanged) or raw integers."""
        return self.spec.dtype if self.spec.dtype.kind in "iu" else np.dtype(np.float32)

    def table(self) -> np.ndarray:
        """``(channels, 256)``: the input value of each pixel value, channel by channel."""
        table = self._table
        if table is None:
            with self._lock:
                if self._table is None:
                    self._table = np.ascontiguousarray(self._build().T)
                table = self._table
        return table

    def _build(self) -> np.ndarray:
        spec = self.spec
        raw = np.arange(256, dtype=np.float64)[:, None].repeat(self.channels, axis=1)
        if spec.dtype.kind in "iu" and not spec.quantized:
            # An integer input without quantization takes the pixel values themselves.
            return raw.astype(spec.dtype)
        if self.normalization is None:
            raise BadRequest(
                f"input {spec.name!r} takes pictures, but how to normalise its pixels is not "
                f"known: {NO_NORMALIZATION_HINT}"
            )
        mean, std = self.normalization.per_channel(self.channels)
        real = ((raw - np.asarray(mean)) / np.asarray(std)).astype(np.float32)
        if not spec.quantized:
            return real.astype(spec.dtype)
        codes = np.empty(real.shape, dtype=spec.dtype)
        quantize_into(codes, real, spec.scale, spec.zero_point)
        return codes

    def fill(self, out: np.ndarray, pixels: np.ndarray) -> None:
        """Write the input values of ``pixels`` (uint8, ``out``'s shape) into ``out``."""
        table = self.table()
        if self.channels == 1:
            np.take(table[0], pixels, out=out)
            return
        for channel in range(self.channels):
            out[..., channel] = np.take(table[channel], pixels[..., channel])
