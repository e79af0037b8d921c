"""Python values (decoded JSON) as numpy arrays, checked and cast to a tensor's dtype.

Nothing here knows about HTTP or interpreters: every function takes plain values and
raises :class:`BadRequest` with a message that names the tensor (``what``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.errors import BadRequest


def to_array(value: Any, *, what: str, booleans_possible: bool = True) -> np.ndarray:
    """A JSON value (number or nested lists) as a numeric or boolean array.

    Rejects ragged nesting, strings, nulls, objects, and booleans mixed among numbers
    (numpy would take them as 1 and 0) with a message naming ``what``. A caller that knows
    no boolean can be in ``value`` (its JSON text has no ``true``/``false``) skips that scan.
    """
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise BadRequest(f"{what}: ragged nested lists (rows of different lengths)") from e
    if array.dtype.kind not in "biuf":
        raise BadRequest(f"{what}: expected numbers, received {describe(array)}")
    if booleans_possible and array.dtype.kind in "iuf" and _holds_a_boolean(value):
        raise BadRequest(f"{what}: expected numbers, received booleans mixed among numbers")
    return array


def _holds_a_boolean(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            if any(type(v) is bool for v in item):
                return True
            pending.extend(v for v in item if isinstance(v, list))
        elif type(item) is bool:
            return True
    return False


def describe(array: np.ndarray) -> str:
    """What a non-numeric array holds, in a client's words (``strings``, not ``<U5``)."""
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
