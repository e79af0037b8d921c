"""serving.protocol.datatypes: names, numpy types, and what each input accepts."""

from __future__ import annotations

import numpy as np
import pytest

from serving.model.tensors import TensorSpec, shape_text
from serving.protocol.datatypes import Datatype, accepted


@pytest.mark.parametrize(
    ("dtype", "v2", "tf"),
    [
        (np.float32, "FP32", "DT_FLOAT"),
        (np.float16, "FP16", "DT_HALF"),
        (np.int8, "INT8", "DT_INT8"),
        (np.uint8, "UINT8", "DT_UINT8"),
        (np.int64, "INT64", "DT_INT64"),
        (np.bool_, "BOOL", "DT_BOOL"),
        (np.str_, "BYTES", "DT_STRING"),
    ],
)
def test_datatype_names(dtype, v2, tf):
    assert Datatype.of(np.dtype(dtype)).value == v2
    assert Datatype.of(np.dtype(dtype)).tf_name == tf


def test_parse_names_only_datatypes():
    assert Datatype.parse("FP16") is Datatype.FP16
    assert Datatype.parse("fp32") is None
    assert Datatype.parse(32) is None
    assert Datatype.parse(["FP32"]) is None


def spec(dtype, scale=0.0):
    return TensorSpec(name="x", index=0, dtype=np.dtype(dtype), shape=(-1, 2), scale=scale)


@pytest.mark.parametrize(
    ("tensor", "names"),
    [
        (spec(np.int8, 0.1), ["FP32", "FP16", "INT8"]),
        (spec(np.uint8, 0.1), ["FP32", "FP16", "UINT8"]),
        (spec(np.float32), ["FP32"]),
        (spec(np.int32), ["INT32"]),
        (spec(np.int8), ["INT8"]),  # an int8 tensor without quantization is plain INT8
    ],
)
def test_accepted_datatypes(tensor, names):
    assert [d.value for d in accepted(tensor)] == names


def test_shape_text():
    assert shape_text((-1, 8, 8, 1)) == "[-1, 8, 8, 1]"
