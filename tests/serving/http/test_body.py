"""serving.http.body: size limit, gzip/deflate inflated within the limit, 415 for the rest."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from serving.errors import BadRequest, PayloadTooLarge
from serving.http import body

GOOD = {"instances": [[[[0.0]] * 8] * 8]}
URL = "/v1/models/model:predict"


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_compressed_bodies_are_served(models, client_for, encoding, compress):
    client = client_for(models / "int8.tflite")
    plain = client.post(URL, json=GOOD)
    response = client.post(
        URL, data=compress(json.dumps(GOOD).encode()), headers={"Content-Encoding": encoding}
    )
    assert response.status_code == 200, response.json
    assert response.json == plain.json


def test_a_compressed_bomb_is_refused_while_inflating(models, client_for):
    client = client_for(models / "int8.tflite", MAX_REQUEST_BYTES="100000")
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of spaces in ~50 KB
    assert len(bomb) < 100_000
    response = client.post(URL, data=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert response.json == {
        "error": "gzip request body inflates to more than the limit of 100000 bytes "
        "(MAX_REQUEST_BYTES)"
    }
    assert client.post(URL, json=GOOD).status_code == 200


def test_inflating_stops_one_byte_past_the_limit():
    assert body.inflate(zlib.compress(b"x" * 1000), body.Encoding.DEFLATE, 1000) == b"x" * 1000
    with pytest.raises(PayloadTooLarge, match="more than the limit of 999 bytes"):
        body.inflate(zlib.compress(b"x" * 1000), body.Encoding.DEFLATE, 999)


@pytest.mark.parametrize(
    ("data", "encoding", "message"),
    [
        (b"not gzip at all", body.Encoding.GZIP, "request body is not valid gzip data"),
        (gzip.compress(b"abc" * 100)[:-9], body.Encoding.GZIP, "gzip request body is truncated"),
        (zlib.compress(b"abc") + b"junk", body.Encoding.DEFLATE, "4 bytes follow the end"),
    ],
)
def test_corrupt_compressed_bodies(data, encoding, message):
    with pytest.raises(BadRequest, match=message):
        body.inflate(data, encoding, 10_000)


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip, br", "compress"])
def test_other_encodings_are_415_naming_the_supported_ones(models, client_for, encoding):
    client = client_for(models / "int8.tflite")
    response = client.post(URL, data=b"{}", headers={"Content-Encoding": encoding})
    assert response.status_code == 415
    assert response.json == {
        "error": f"Content-Encoding {encoding!r} is not supported; "
        "use one of: identity, gzip, deflate"
    }


def test_corrupt_gzip_over_http_is_400(models, client_for):
    client = client_for(models / "int8.tflite")
    response = client.post(URL, data=b"\x1f\x8bnope", headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert response.json["error"].startswith("request body is not valid gzip data")
