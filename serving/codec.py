"""Pure conversions between JSON values and numpy arrays, and int8/uint8 (de)quantization.

Nothing here knows about HTTP or interpreters: every function takes plain values and
raises :class:`BadRequest` with a message that names the tensor (``what``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.errors import BadRequest

# Open Inference Protocol (KServe V2) datatypes <-> numpy.
V2_DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
_V2_NAMES = {dtype: name for name, dtype in V2_DATATYPES.items()}

# TensorFlow Serving's metadata names (tensorflow/core/framework/types.proto).
_TF_NAMES = {
    np.dtype(np.bool_): "DT_BOOL",
    np.dtype(np.uint8): "DT_UINT8",
    np.dtype(np.uint16): "DT_UINT16",
    np.dtype(np.uint32): "DT_UINT32",
    np.dtype(np.uint64): "DT_UINT64",
    np.dtype(np.int8): "DT_INT8",
    np.dtype(np.int16): "DT_INT16",
    np.dtype(np.int32): "DT_INT32",
    np.dtype(np.int64): "DT_INT64",
    np.dtype(np.float16): "DT_HALF",
    np.dtype(np.float32): "DT_FLOAT",
    np.dtype(np.float64): "DT_DOUBLE",
}


def v2_datatype(dtype: np.dtype) -> str:
    """The V2 datatype name of a numpy dtype (``BYTES`` for anything non-numeric)."""
    return _V2_NAMES.get(np.dtype(dtype), "BYTES")


def tf_datatype(dtype: np.dtype) -> str:
    """The TensorFlow ``DT_*`` name of a numpy dtype (``DT_STRING`` for non-numeric)."""
    return _TF_NAMES.get(np.dtype(dtype), "DT_STRING")


def to_array(value: Any, *, what: str) -> np.ndarray:
    """A JSON value (number or nested lists) as a numeric or boolean array.

    Rejects ragged nesting, strings, nulls and objects with a message naming ``what``.
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise BadRequest(f"{what}: ragged nested lists (rows of different lengths)") from e
    if array.dtype.kind not in "biuf":
        raise BadRequest(f"{what}: expected numbers, received {_describe(value, array)}")
    return array


def _describe(value: Any, array: np.ndarray) -> str:
    if array.dtype.kind in "US":
        return "strings"
    if array.dtype.kind == "O":
        kinds = sorted({"null" if v is None else type(v).__name__ for v in np.ravel(array)})
        return "non-numeric values (" + ", ".join(kinds) + ")"
    return f"values of type {array.dtype}"


def coerce(array: np.ndarray, dtype: np.dtype, *, what: str) -> np.ndarray:
    """``array`` cast to ``dtype``, refusing values the type cannot hold.

    Integers must be whole and within the type's range; floats must not overflow
    (a finite value that would become infinite); booleans only go to booleans.
    """
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    if dtype.kind == "b":
        if array.dtype.kind != "b":
            raise BadRequest(f"{what}: expected booleans, received numbers")
        return array
    if array.dtype.kind == "b":
        raise BadRequest(f"{what}: expected numbers, received booleans")
    if dtype.kind in "iu":
        if array.dtype.kind == "f" and (
            not np.all(np.isfinite(array)) or np.any(array != np.trunc(array))
        ):
            raise BadRequest(f"{what}: expected whole numbers for {dtype.name}")
        info = np.iinfo(dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise BadRequest(
                f"{what}: values out of range for {dtype.name} ([{info.min}, {info.max}]); "
                f"received [{array.min()}, {array.max()}]"
            )
        return array.astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(dtype)
    if np.any(np.isinf(cast) & np.isfinite(array)):
        raise BadRequest(f"{what}: values out of range for {dtype.name}")
    return cast


def quantize(
    real: np.ndarray, scale: float, zero_point: int, dtype: np.dtype, *, what: str
) -> np.ndarray:
    """Real values to integers: ``round(x / scale) + zero_point``, saturated to ``dtype``.

    Ties round to even (IEEE ``rint``, as TFLite's optimized kernels do) and values beyond
    the representable range saturate, as TFLite's QUANTIZE kernel does. Non-finite values
    cannot be quantized. Written as a few in-place passes: on a 224x224x3 image this runs
    on every request, next to an invoke of a few milliseconds.
    """
    real = np.asarray(real, dtype=np.float32)
    # One float64 sum finds NaN and infinity without a boolean temporary; finite float32
    # values cannot overflow it.
    if not np.isfinite(np.add.reduce(real, axis=None, dtype=np.float64)):
        raise BadRequest(f"{what}: NaN or infinite values cannot be quantized")
    scaled = np.divide(real, np.float32(scale))
    scaled += np.float32(zero_point)
    info = np.iinfo(dtype)
    np.clip(scaled, info.min, info.max, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(dtype)


def dequantize(quantized: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integers back to real values: ``(q - zero_point) * scale`` as float32."""
    return (quantized.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def to_json(array: np.ndarray) -> Any:
    """An array as nested lists of Python numbers (a scalar for rank 0)."""
    return array.tolist()


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    """A shape as the client writes it, with -1 for a dynamic dimension: ``[-1, 8, 8, 1]``."""
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"
