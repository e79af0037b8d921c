"""Picture files in, on DirectRunner: decoded, normalised and labelled as the function does."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.batch.conftest import SKIP_WITHOUT_BEAM, scored
from tests.conftest import REPO
from tests.reference import reference_predict
from tests.server import running_server

pytest.importorskip("apache_beam", reason=SKIP_WITHOUT_BEAM)

RNG = np.random.default_rng(19)
MEDIA = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "bmp": "image/bmp"}


def write_pictures(folder, count: int = 3) -> dict[str, np.ndarray]:
    """PNG (12x12, as the model takes them), JPEG, WebP and BMP (other sizes: resized)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i in range(count):
        for suffix, size in (("png", 12), ("jpg", 40), ("webp", 20), ("bmp", 7)):
            pixels = RNG.integers(0, 256, (size, size, 3), dtype=np.uint8)
            path = folder / f"p{i}.{suffix}"
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format={"jpg": "JPEG"}.get(suffix, suffix.upper()))
            path.write_bytes(buffer.getvalue())
            written[str(path)] = pixels
    return written


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_pictures_get_the_function_s_predictions_and_labels(picture_models, tmp_path, capsys, mode):
    model = picture_models / f"{mode}.tflite"
    pictures = write_pictures(tmp_path / "in")
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    run = scored(capsys, model, str(tmp_path / "in" / "*"), tmp_path / "out")
    assert run.summary.startswith(f"python -m batch: {len(pictures)} predicted, 1 errors in ")
    lines = {line["instance"]["uri"]: line for line in run.lines("predictions")}
    assert sorted(lines) == sorted(pictures)
    (error,) = run.lines("errors")
    assert error["instance"] == {"uri": str(tmp_path / "in" / "broken.png")}
    assert "not a decodable image/png" in error["error"]

    with running_server(model) as server:
        for uri, line in lines.items():
            data = Path(uri).read_bytes()
            headers = {"Content-Type": MEDIA[uri.rsplit(".", 1)[1]]}
            predict = requests.post(
                f"{server.url}/v1/models/model:predict", data=data, headers=headers, timeout=30
            )
            classify = requests.post(
                f"{server.url}/v1/models/model:classify", data=data, headers=headers, timeout=30
            )
            assert predict.status_code == classify.status_code == 200, predict.text
            np.testing.assert_allclose(
                line["prediction"], predict.json()["predictions"][0], rtol=0, atol=1e-6
            )
            assert line["labels"] == classify.json()["results"][0]
            assert {label for label, _ in line["labels"]} == {"cat", "dog", "bird", "fish"}


def test_lossless_pictures_equal_a_bare_interpreter_on_normalised_pixels(
    picture_models, tmp_path, capsys
):
    model = picture_models / "float32.tflite"
    pictures = {k: v for k, v in write_pictures(tmp_path / "in").items() if k.endswith(".png")}
    run = scored(capsys, model, str(tmp_path / "in" / "*.png"), tmp_path / "out")
    lines = {line["instance"]["uri"]: line for line in run.lines("predictions")}
    for uri, pixels in pictures.items():
        # The converter wrote mean 127, std 128 into the model's metadata.
        x = (pixels[None].astype(np.float32) - 127.0) / 128.0
        (expected,) = reference_predict(model, {"image": x}).values()
        np.testing.assert_allclose(lines[uri]["prediction"], expected[0], rtol=0, atol=1e-5)


def test_normalisation_override_applies_as_for_the_function(
    picture_models, tmp_path, capsys, monkeypatch
):
    model = picture_models / "float32.tflite"
    pictures = write_pictures(tmp_path / "in", count=1)
    uri = next(k for k in pictures if k.endswith(".png"))
    monkeypatch.setenv("IMAGE_MEAN", "0")
    monkeypatch.setenv("IMAGE_STD", "255")
    run = scored(capsys, model, uri, tmp_path / "out")
    (line,) = run.lines("predictions")
    x = pictures[uri][None].astype(np.float32) / 255.0
    (expected,) = reference_predict(model, {"image": x}).values()
    np.testing.assert_allclose(line["prediction"], expected[0], rtol=0, atol=1e-5)
    assert json.dumps(line["instance"]) == json.dumps({"uri": uri})


def test_the_documented_example_labels_the_shipped_digits(tmp_path, capsys, digits_model):
    """docs/batch.md: ``--model model/quantized_model.tflite --input 'model/examples/*.png'``
    labels each digit picture with its own digit (the digits model built as ``make model``
    builds it: the bundled file is the user's to replace)."""
    text = " ".join((REPO / "docs" / "batch.md").read_text().replace("\\\n", " ").split())
    assert (
        "python -m batch --model model/quantized_model.tflite --input 'model/examples/*.png' "
        "--output build/digits" in text
    )
    run = scored(capsys, digits_model, REPO / "model" / "examples" / "*.png", tmp_path / "out")
    lines = run.lines("predictions")
    assert len(lines) == len(list((REPO / "model" / "examples").glob("*.png"))) >= 2
    for line in lines:
        assert line["labels"][0][0] == Path(line["instance"]["uri"]).stem
    assert run.lines("errors") == []


def test_labels_path_and_the_picture_size_limit_apply_as_for_the_function(
    picture_models, tmp_path, capsys, monkeypatch
):
    pictures = write_pictures(tmp_path / "in", count=1)  # 12x12, 40x40, 20x20, 7x7 pixels
    labels = tmp_path / "labels.txt"
    labels.write_text("north\neast\nsouth\nwest\n")
    monkeypatch.setenv("LABELS_PATH", str(labels))
    monkeypatch.setenv("MAX_IMAGE_PIXELS", str(30 * 30))
    run = scored(capsys, picture_models / "int8.tflite", tmp_path / "in" / "*", tmp_path / "out")
    lines = {line["instance"]["uri"]: line for line in run.lines("predictions")}
    assert sorted(lines) == sorted(uri for uri in pictures if not uri.endswith(".jpg"))
    for line in lines.values():
        assert {label for label, _ in line["labels"]} == {"north", "east", "south", "west"}
    (error,) = run.lines("errors")
    assert error["instance"]["uri"].endswith(".jpg")
    assert "picture of 40x40 = 1600 pixels is over the limit of 900 pixels" in error["error"]
