"""Real values to int8/uint8 codes and back, with a tensor's scale and zero point.

Quantization runs on every request of a quantized model, next to an invoke of a few
milliseconds, so it is written as a few in-place passes over a reusable scratch buffer
that end in the destination (the interpreter's own input buffer on the fast path).
"""

from __future__ import annotations

import numpy as np

from serving.errors import BadRequest


def check_finite(real: np.ndarray, *, what: str) -> None:
    """Refuse NaN and infinity, which have no quantized code."""
    # A float32 sum is the cheapest full scan; it can also overflow on huge finite values,
    # so only a non-finite sum pays for the exact element-wise check.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(real, axis=None, dtype=np.float32) if real.size else 0.0
    if not np.isfinite(total) and not np.isfinite(real).all():
        raise BadRequest(f"{what}: NaN or infinite values cannot be quantized")


def quantize_into(
    out: np.ndarray,
    real: np.ndarray,
    scale: float,
    zero_point: int,
    *,
    scratch: np.ndarray | None = None,
) -> None:
    """Write ``round(real / scale) + zero_point``, saturated to ``out``'s integer type.

    Ties round to even (IEEE ``rint``, as TFLite's optimized kernels do) and values beyond
    the representable range saturate, as TFLite's QUANTIZE kernel does. ``real`` must be
    finite (:func:`check_finite`): callers check before they hold an interpreter, so a bad
    request never costs one. ``scratch`` (float32, ``real``'s shape) avoids an allocation.
    """
    if scratch is None or scratch.shape != real.shape:
        scratch = np.empty(real.shape, dtype=np.float32)
    np.divide(real, np.float32(scale), out=scratch, casting="same_kind")
    np.add(scratch, np.float32(zero_point), out=scratch)
    info = np.iinfo(out.dtype)
    np.clip(scratch, info.min, info.max, out=scratch)
    np.rint(scratch, out=scratch)
    # rint into float then one casting copy is faster than rint straight into integers.
    np.copyto(out, scratch, casting="unsafe")


def quantize(
    real: np.ndarray, scale: float, zero_point: int, dtype: np.dtype, *, what: str
) -> np.ndarray:
    """Real values as a new array of ``dtype`` codes (see :func:`quantize_into`)."""
    real = np.asarray(real)
    check_finite(real, what=what)
    out = np.empty(real.shape, dtype=dtype)
    quantize_into(out, real, scale, zero_point)
    return out


def dequantize(quantized: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integers back to real values: ``(q - zero_point) * scale`` as float32."""
    return (quantized.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
