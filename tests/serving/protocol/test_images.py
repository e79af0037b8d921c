"""Pictures in: raw bodies, TF Serving b64 and V2 BYTES, decoded, normalised, checked.

Pictures are made with Pillow; expected answers come from an independent decode (Pillow),
normalisation (numpy, float64) and invoke (``tests.reference``), on pictures of the
input's own size so no resize filter is involved.
"""

from __future__ import annotations

import base64
import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.picture_models import MEAN, SIZE, STD
from tests.reference import reference_predict

RNG = np.random.default_rng(41)


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def rgb(size: int = SIZE) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def expected_for(path: Path, data: bytes) -> np.ndarray:
    """Decode with Pillow, normalise with numpy, invoke with the reference runner."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
    real = (pixels - MEAN) / STD
    return reference_predict(path, {"image": real[np.newaxis].astype(np.float32)})["probs"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_raw_png_equals_independent_decode_normalise_invoke(client_for, picture_models, mode):
    path = picture_models / f"{mode}.tflite"
    data = encode(rgb())
    client = client_for(path)
    expected = expected_for(path, data)
    raw = client.post("/v1/models/model:predict", data=data, content_type="image/png")
    assert raw.status_code == 200, raw.json
    np.testing.assert_allclose(raw.json["predictions"], expected, atol=1e-6)
    root = client.post("/", data=data, content_type="image/png")
    np.testing.assert_allclose(root.json["predictions"], expected, atol=1e-6)


def test_b64_in_every_tf_serving_form(client_for, picture_models):
    path = picture_models / "int8.tflite"
    pictures = [encode(rgb()), encode(rgb(), "JPEG", quality=95)]
    expected = np.concatenate([expected_for(path, p) for p in pictures])
    client = client_for(path)
    url = "/v1/models/model:predict"
    bodies = [
        {"instances": [{"b64": b64(p)} for p in pictures]},
        {"instances": [{"image": {"b64": b64(p)}} for p in pictures]},
        {"inputs": [{"b64": b64(p)} for p in pictures]},
        {"inputs": {"image": [{"b64": b64(p)} for p in pictures]}},
    ]
    for body in bodies:
        response = client.post(url, json=body)
        assert response.status_code == 200, (body.keys(), response.json)
        answer = response.json.get("predictions", response.json.get("outputs"))
        np.testing.assert_allclose(answer, expected, atol=1e-6)
    single = client.post(url, json={"inputs": {"image": {"b64": b64(pictures[0])}}})
    np.testing.assert_allclose(single.json["outputs"], expected[:1], atol=1e-6)


def test_v2_bytes_json_and_binary(client_for, picture_models):
    path = picture_models / "float32.tflite"
    pictures = [encode(rgb()), encode(rgb(), "WEBP", lossless=True)]
    expected = np.concatenate([expected_for(path, p) for p in pictures])
    client = client_for(path)
    body = {
        "inputs": [
            {
                "name": "image",
                "shape": [2, 1],
                "datatype": "BYTES",
                "data": [b64(p) for p in pictures],
            }
        ]
    }
    response = client.post("/v2/models/model/infer", json=body)
    assert response.status_code == 200, response.json
    np.testing.assert_allclose(
        np.reshape(response.json["outputs"][0]["data"], (2, 4)), expected, atol=1e-6
    )
    blob = b"".join(len(p).to_bytes(4, "little") + p for p in pictures)
    header = (
        b'{"inputs":[{"name":"image","shape":[2],"datatype":"BYTES",'
        b'"parameters":{"binary_data_size":%d}}]}' % len(blob)
    )
    response = client.post(
        "/v2/models/model/infer",
        data=header + blob,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.json
    np.testing.assert_allclose(
        np.reshape(response.json["outputs"][0]["data"], (2, 4)), expected, atol=1e-6
    )


def test_resize_channels_and_exif_orientation(client_for, picture_models):
    """A bigger grey picture, rotated by its EXIF tag, answers as Pillow's own
    transpose + RGB + BILINEAR resize of it does."""
    path = picture_models / "float32.tflite"
    grey = Image.fromarray(RNG.integers(0, 256, (30, 20), dtype=np.uint8), "L")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(grey, "PNG", exif=exif)
    upright = grey.transpose(Image.Transpose.ROTATE_270).convert("RGB")
    resized = upright.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    expected = expected_for(path, encode(resized))
    response = client_for(path).post(
        "/v1/models/model:predict", data=data, content_type="image/png"
    )
    assert response.status_code == 200, response.json
    np.testing.assert_allclose(response.json["predictions"], expected, atol=1e-6)


def big_png(side: int) -> bytes:
    """A {side}x{side} black grey PNG made without holding its pixels (a few hundred KB)."""
    row = b"\x00" + b"\x00" * side
    compressor = zlib.compressobj(9)
    chunks = [compressor.compress(row) for _ in range(side)] + [compressor.flush()]
    data = b"".join(chunks)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload).to_bytes(4, "big")
        return len(payload).to_bytes(4, "big") + kind + payload + crc

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_hostile_pictures_are_refused_and_the_next_request_works(client_for, picture_models):
    client = client_for(picture_models / "int8.tflite", MAX_IMAGE_PIXELS="1000000")
    url = "/v1/models/model:predict"
    bomb = big_png(12000)
    assert len(bomb) < 1_000_000
    good = encode(rgb())
    cases = [
        (bomb, "image/png", 413, "picture of 12000x12000 = 144000000 pixels is over the limit"),
        (b"not a picture at all", "image/png", 400, "input 'image': not a decodable image/png"),
        (good, "image/jpeg", 400, "input 'image': not a decodable image/jpeg"),
        (good[: len(good) // 2], "image/png", 400, "not a decodable image/png"),
        (good, "image/tiff", 415, "Content-Type image/tiff is not supported; send image/jpeg"),
    ]
    for data, content_type, status, message in cases:
        response = client.post(url, data=data, content_type=content_type)
        assert response.status_code == status, response.json
        assert message in response.json["error"]
        assert client.post(url, data=good, content_type="image/png").status_code == 200
    response = client.post(url, json={"instances": [{"b64": b64(bomb)}]})
    assert response.status_code == 413
    assert "MAX_IMAGE_PIXELS" in response.json["error"]


ACCEPTED = "image/jpeg, image/png, image/webp, image/bmp, image/gif"


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (
            b'{"instances": [1]}',
            "image/png",
            "input 'image': not a decodable image/png: received 18 bytes starting with the "
            f"text '{{\"instances\"'...; accepted: {ACCEPTED}",
        ),
        (
            bytes(range(3)),
            "image/jpeg",
            "input 'image': not a decodable image/jpeg: received 3 bytes starting with the "
            f"bytes 00 01 02; accepted: {ACCEPTED}",
        ),
        (
            encode(rgb(), "JPEG"),
            "image/png",
            "input 'image': not a decodable image/png: the data is image/jpeg, not image/png",
        ),
        (
            b"\x89PNG\r\n\x1a\n not really",
            "image/png",
            "input 'image': not a decodable image/png: it begins with the image/png signature, "
            "but its header is not valid",
        ),
    ],
)
def test_a_body_that_is_no_picture_is_described_not_its_file_object(
    client_for, picture_models, data, content_type, message
):
    """Pillow's "cannot identify image file <_io.BytesIO object at 0x...>" says nothing to
    a client: the answer says what was received and what is accepted."""
    client = client_for(picture_models / "int8.tflite")
    response = client.post("/v1/models/model:predict", data=data, content_type=content_type)
    assert response.status_code == 400
    assert response.json == {"error": message}


def test_undeclared_pictures_that_are_none_are_described_in_b64_and_v2_bytes(
    client_for, picture_models
):
    client = client_for(picture_models / "int8.tflite")
    response = client.post("/v1/models/model:predict", json={"instances": [{"b64": b64(b"GIF")}]})
    assert response.status_code == 400
    assert response.json == {
        "error": "input 'image': not a decodable picture: received 3 bytes starting with the "
        f"text 'GIF'; accepted: {ACCEPTED}"
    }
    tensor = {"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(b"\0" * 20)]}
    response = client.post("/v2/models/model/infer", json={"inputs": [tensor]})
    assert response.status_code == 400
    assert response.json == {
        "error": "input 'image': not a decodable picture: received 20 bytes starting with the "
        f"bytes 00 00 00 00 00 00 00 00 00 00 00 00...; accepted: {ACCEPTED}"
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": [{"b64": "%%%"}]}, "input 'image': 'b64' is not valid base64"),
        ({"instances": [{"b64": 7}]}, "input 'image': 'b64' must be a string of base64 text"),
        (
            {"instances": [{"image": {"b64": "AAAA"}}, {"image": [[[0, 0, 0]]]}]},
            "input 'image': mixes {'b64': ...} pictures and other values",
        ),
    ],
)
def test_bad_b64_values(client_for, picture_models, body, message):
    response = client_for(picture_models / "int8.tflite").post(
        "/v1/models/model:predict", json=body
    )
    assert response.status_code == 400
    assert message in response.json["error"]


def test_pictures_need_a_picture_input(client_for, models):
    client = client_for(models / "multi.tflite")
    png = encode(rgb())
    response = client.post("/v1/models/model:predict", data=png, content_type="image/png")
    assert response.status_code == 400
    assert "an image/png body needs a model with one picture input" in response.json["error"]
    response = client.post(
        "/v1/models/model:predict", json={"instances": [{"a": {"b64": b64(png)}, "b": [0] * 3}]}
    )
    assert response.status_code == 400
    assert (
        "input 'a': {'b64': ...} values are accepted only by picture inputs"
        in (response.json["error"])
    )
    body = {"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": [b64(png)]}]}
    response = client.post("/v2/models/model/infer", json=body)
    assert response.status_code == 400
    assert "input 'a': datatype BYTES is not accepted; expected FP32" in response.json["error"]


def test_unknown_normalisation_is_400_until_settings_give_it(client_for, models):
    """The fixture model has no metadata: pictures need IMAGE_MEAN / IMAGE_STD."""
    path = models / "float32.tflite"
    grey = Image.fromarray(RNG.integers(0, 256, (8, 8), dtype=np.uint8), "L")
    data = encode(grey)
    response = client_for(path).post("/", data=data, content_type="image/png")
    assert response.status_code == 400
    assert (
        "how to normalise its pixels is not known: set IMAGE_MEAN and IMAGE_STD"
        in (response.json["error"])
    )
    response = client_for(path, IMAGE_STD="255").post("/", data=data, content_type="image/png")
    assert response.status_code == 200, response.json
    real = np.asarray(grey, np.float64)[np.newaxis, ..., np.newaxis] / 255
    expected = reference_predict(path, {"pixels": real.astype(np.float32)})["output_0"]
    np.testing.assert_allclose(response.json["predictions"], expected, atol=1e-6)


def test_v2_bytes_shape_must_be_one_picture_per_item(client_for, picture_models):
    body = {
        "inputs": [
            {"name": "image", "shape": [1, 2], "datatype": "BYTES", "data": ["AAAA", "AAAA"]}
        ]
    }
    response = client_for(picture_models / "int8.tflite").post("/v2/models/model/infer", json=body)
    assert response.status_code == 400
    assert "BYTES pictures take shape [batch] or [batch, 1]" in response.json["error"]
