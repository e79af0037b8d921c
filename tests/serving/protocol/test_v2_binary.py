"""serving.protocol.v2_binary: the binary tensor data extension's byte layout, as tables."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from serving.errors import BadRequest
from serving.protocol import v2_binary
from serving.protocol.datatypes import Datatype


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        (Datatype.FP32, [[0.5, -1.25], [3.0, 1e-30]]),
        (Datatype.FP16, [[0.5, -1.25], [3.0, 65504.0]]),
        (Datatype.FP64, [[0.1, 2.0], [-3.5, 1e300]]),
        (Datatype.INT8, [[-128, 127], [0, 1]]),
        (Datatype.UINT8, [[0, 255], [7, 8]]),
        (Datatype.INT16, [[-32768, 32767], [1, 2]]),
        (Datatype.INT32, [[-(2**31), 2**31 - 1], [1, 2]]),
        (Datatype.INT64, [[-(2**63), 2**63 - 1], [1, 2]]),
        (Datatype.UINT16, [[0, 65535], [1, 2]]),
        (Datatype.UINT32, [[0, 2**32 - 1], [1, 2]]),
        (Datatype.UINT64, [[0, 2**64 - 1], [1, 2]]),
        (Datatype.BOOL, [[True, False], [False, True]]),
    ],
)
def test_numeric_tensors_are_little_endian_row_major(datatype, values):
    array = np.array(values, dtype=datatype.numpy)
    raw = array.astype(datatype.numpy.newbyteorder("<")).tobytes()  # independent of encode()
    assert v2_binary.encode(array) == raw
    decoded = v2_binary.decode(memoryview(raw), datatype, (2, 2), what="input 'x'")
    assert decoded.dtype == datatype.numpy
    np.testing.assert_array_equal(decoded, array)


def test_bool_is_one_byte_each_and_only_0_or_1():
    decoded = v2_binary.decode(memoryview(b"\x01\x00\x01"), Datatype.BOOL, (3,), what="input 'x'")
    assert decoded.tolist() == [True, False, True]
    with pytest.raises(BadRequest, match="input 'x': BOOL elements must be bytes 0 or 1"):
        v2_binary.decode(memoryview(b"\x01\x02"), Datatype.BOOL, (2,), what="input 'x'")


def test_bytes_elements_are_length_prefixed():
    raw = struct.pack("<I", 3) + b"abc" + struct.pack("<I", 0) + struct.pack("<I", 2) + b"\xff\x00"
    decoded = v2_binary.decode(memoryview(raw), Datatype.BYTES, (3, 1), what="input 'x'")
    assert decoded.shape == (3, 1)
    assert decoded.reshape(-1).tolist() == [b"abc", b"", b"\xff\x00"]
    assert v2_binary.encode(decoded) == raw
    assert v2_binary.encode(np.array(["hé"], dtype=object)) == struct.pack("<I", 3) + "hé".encode()


@pytest.mark.parametrize(
    ("raw", "shape", "message"),
    [
        (
            struct.pack("<I", 1) + b"a" + b"\x00\x00\x00",
            (2,),
            "input 'x': BYTES element 1 has no 4-byte length prefix",
        ),
        (
            struct.pack("<I", 9) + b"abc",
            (1,),
            "input 'x': BYTES element 0 declares 9 bytes, 3 are left",
        ),
        (
            struct.pack("<I", 1) + b"ab",
            (1,),
            "input 'x': 1 bytes follow the last of 1 BYTES elements",
        ),
        (
            struct.pack("<I", 0),
            (10**9,),
            "input 'x': 1000000000 BYTES elements need at least 4000000000 bytes",
        ),
    ],
)
def test_malformed_bytes_tensors(raw, shape, message):
    with pytest.raises(BadRequest, match=message):
        v2_binary.decode(memoryview(raw), Datatype.BYTES, shape, what="input 'x'")


def test_size_must_match_shape_times_datatype():
    with pytest.raises(
        BadRequest,
        match=r"input 'x': binary_data_size is 12 bytes, but shape \[2, 2\] of FP32 needs "
        r"16 bytes \(4 x 4\)",
    ):
        v2_binary.decode(memoryview(bytes(12)), Datatype.FP32, (2, 2), what="input 'x'")


def test_split_header_and_tail():
    header, tail = v2_binary.split(b'{"a":1}XYZ', "7")
    assert header == b'{"a":1}'
    assert bytes(tail) == b"XYZ"
    header, tail = v2_binary.split(b'{"a":1}', None)
    assert (header, bytes(tail)) == (b'{"a":1}', b"")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "Inference-Header-Content-Length must be a whole number of bytes, received 'abc'"),
        ("-3", "must be a whole number of bytes, received '-3'"),
        ("1e3", "must be a whole number of bytes, received '1e3'"),
        ("0", "Inference-Header-Content-Length is 0 but the body has 10 bytes"),
        ("11", "Inference-Header-Content-Length is 11 but the body has 10 bytes"),
    ],
)
def test_split_refuses_bad_header_lengths(value, message):
    with pytest.raises(BadRequest, match=message):
        v2_binary.split(b"0123456789", value)


def test_tail_hands_out_bytes_in_order_and_checks_the_rest():
    tail = v2_binary.Tail(memoryview(b"aabbbc"))
    assert bytes(tail.take(2, what="input 'a'")) == b"aa"
    assert bytes(tail.take(3, what="input 'b'")) == b"bbb"
    with pytest.raises(BadRequest, match="1 bytes of binary data follow the last binary input"):
        tail.check_consumed()
    with pytest.raises(
        BadRequest,
        match="input 'c': binary_data_size is 4 bytes but only 1 bytes of binary data are left",
    ):
        tail.take(4, what="input 'c'")
