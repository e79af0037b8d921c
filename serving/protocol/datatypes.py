"""The closed set of tensor datatypes on the wire, their numpy types, and which each input accepts.

Open Inference Protocol (KServe V2) names (``FP32``, ``INT8``, ``BYTES``...) are the
canonical ones; TensorFlow Serving's ``DT_*`` names are derived for its metadata.
"""

from __future__ import annotations

import enum

import numpy as np

from serving.model.tensors import TensorSpec


class Datatype(enum.Enum):
    """A V2 datatype; ``value`` is its wire name."""

    BOOL = "BOOL"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"
    FP64 = "FP64"
    BYTES = "BYTES"

    @property
    def numpy(self) -> np.dtype:
        """The numpy dtype of one element (``object`` holding ``bytes`` for BYTES)."""
        return _NUMPY[self]

    @property
    def item_size(self) -> int | None:
        """Bytes per element in the binary encoding; None for BYTES (length-prefixed)."""
        return None if self is Datatype.BYTES else self.numpy.itemsize

    @property
    def tf_name(self) -> str:
        """TensorFlow's name for it (``tensorflow/core/framework/types.proto``)."""
        return _TF_NAMES[self]

    @classmethod
    def of(cls, dtype: np.dtype) -> Datatype:
        """The datatype of a numpy dtype (BYTES for anything non-numeric)."""
        return _BY_NUMPY.get(np.dtype(dtype), cls.BYTES)

    @classmethod
    def parse(cls, name: object) -> Datatype | None:
        """The datatype named ``name``, or None when it names none."""
        return _BY_NAME.get(name) if isinstance(name, str) else None


_NUMPY: dict[Datatype, np.dtype] = {
    Datatype.BOOL: np.dtype(np.bool_),
    Datatype.UINT8: np.dtype(np.uint8),
    Datatype.UINT16: np.dtype(np.uint16),
    Datatype.UINT32: np.dtype(np.uint32),
    Datatype.UINT64: np.dtype(np.uint64),
    Datatype.INT8: np.dtype(np.int8),
    Datatype.INT16: np.dtype(np.int16),
    Datatype.INT32: np.dtype(np.int32),
    Datatype.INT64: np.dtype(np.int64),
    Datatype.FP16: np.dtype(np.float16),
    Datatype.FP32: np.dtype(np.float32),
    Datatype.FP64: np.dtype(np.float64),
    Datatype.BYTES: np.dtype(object),
}
_BY_NUMPY = {dtype: datatype for datatype, dtype in _NUMPY.items() if datatype != Datatype.BYTES}
_BY_NAME = {datatype.value: datatype for datatype in Datatype}
_TF_NAMES = {
    Datatype.BOOL: "DT_BOOL",
    Datatype.UINT8: "DT_UINT8",
    Datatype.UINT16: "DT_UINT16",
    Datatype.UINT32: "DT_UINT32",
    Datatype.UINT64: "DT_UINT64",
    Datatype.INT8: "DT_INT8",
    Datatype.INT16: "DT_INT16",
    Datatype.INT32: "DT_INT32",
    Datatype.INT64: "DT_INT64",
    Datatype.FP16: "DT_HALF",
    Datatype.FP32: "DT_FLOAT",
    Datatype.FP64: "DT_DOUBLE",
    Datatype.BYTES: "DT_STRING",
}

# Real values for a quantized input: the server quantizes them with the tensor's scale.
REAL_VALUE_DATATYPES = (Datatype.FP32, Datatype.FP16)


def accepted(spec: TensorSpec) -> tuple[Datatype, ...]:
    """The V2 datatypes an input accepts, the one it advertises first.

    A quantized (int8/uint8) input takes real values as FP32 or FP16, which the server
    quantizes, or its storage type (INT8/UINT8), whose raw codes pass through unchanged.
    Any other input takes exactly its own datatype, as Triton does: a silent cast (FP64
    to FP32, INT64 to INT32) would hide a client's mistake.
    """
    own = Datatype.of(spec.dtype)
    if spec.quantized:
        return (*REAL_VALUE_DATATYPES, own)
    return (own,)
