"""Labels, normalisation, name and provenance round-trip through standard TFLite metadata.

Read back with tflite-support's own generated code (``read_metadata.py``) in a separate
virtual environment that the first test run creates under ``build/`` (tflite-support pins
protobuf < 4, which the dev environment cannot hold): no code shared with the writer.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convert.cli import main
from tests.convert.conftest import REPO, Built

pytestmark = [pytest.mark.needs_tensorflow, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-metadata-reader.txt"


@pytest.fixture(scope="session")
def read_metadata() -> object:
    """A function: path of a .tflite -> its metadata as tflite-support reads it."""
    venv = REPO / "build" / "metadata-reader"
    stamp = venv / ".installed"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != wanted:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(REQUIREMENTS)],
            check=True,
            timeout=600,
        )
        stamp.write_text(wanted)

    def read(path: Path) -> dict:
        result = subprocess.run(
            [str(venv / "bin" / "python"), str(HERE / "read_metadata.py"), str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return read


def _convert(capsys: pytest.CaptureFixture[str], *args: str | Path) -> int:
    status = main([str(a) for a in args])
    assert status == 0, capsys.readouterr().err
    capsys.readouterr()
    return status


def test_labels_normalisation_and_names_round_trip(
    functional: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str], read_metadata
) -> None:
    # The data on raw 0..255 pixels; --std 255 maps it to the model's 0..1.
    raw = tmp_path / "raw.npz"
    np.savez(raw, pixels=np.load(functional.calibration)["pixels"] * 255)
    raw_eval = tmp_path / "raw-eval.npz"
    evaluation = np.load(functional.eval)
    np.savez(raw_eval, pixels=evaluation["pixels"] * 255, labels=evaluation["labels"])
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"digit {i}\n" for i in range(10)))
    target = tmp_path / "m.tflite"
    _convert(
        capsys,
        *(functional.path, "-o", target, "--calibration", raw, "--eval", raw_eval),
        *("--std", "255", "--labels", labels, "--calibration-samples", "100"),
        *("--name", "Digits", "--description", "Reads 8x8 digits.", "--version", "2.1"),
    )
    found = read_metadata(target)
    assert found["name"] == "Digits"
    assert found["version"] == "2.1"
    assert found["min_parser_version"] == "1.0.0"
    assert found["description"] == "Reads 8x8 digits."
    (subgraph,) = found["subgraphs"]
    assert subgraph["name"] == "serving_default"
    (pixels,) = subgraph["inputs"]
    assert pixels["name"] == "pixels"
    assert pixels["content"]["properties_type"] == found["ImageProperties"]
    assert pixels["content"]["color_space"] == found["GRAYSCALE"]
    assert pixels["content"]["size"] == [8, 8]
    assert pixels["process_units"] == [
        {"type": "NormalizationOptions", "mean": [0.0], "std": [255.0]}
    ]
    (digit,) = subgraph["outputs"]
    assert digit["name"] == "digit"
    assert digit["associated_files"] == [
        {"name": "labels.txt", "type": found["TENSOR_AXIS_LABELS"]}
    ]
    assert found["files"] == {"labels.txt": labels.read_text()}
    provenance = found["provenance"]
    assert provenance["mode"] == "int8"
    assert provenance["source"] == str(functional.path)
    assert provenance["conversion_path"] == "saved_model"
    assert provenance["agreement"]["serving_default"]["digit"] >= 0.95


def test_image_directory_default_is_written_on_raw_pixels(
    functional: Built, digits, tmp_path: Path, capsys: pytest.CaptureFixture[str], read_metadata
) -> None:
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i, pixels in enumerate(digits.x_train[:30]):
        Image.fromarray(np.round(pixels[..., 0] * 255).astype(np.uint8)).save(images / f"{i}.png")
    target = tmp_path / "m.tflite"
    _convert(capsys, functional.path, "-o", target, "--calibration", images)
    found = read_metadata(target)
    assert found["files"] == {}  # no --labels: no associated files appended
    (pixels,) = found["subgraphs"][0]["inputs"]
    assert pixels["process_units"] == [
        {"type": "NormalizationOptions", "mean": [0.0], "std": [255.0]}
    ]


def test_every_signature_has_its_metadata(
    saved_model: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str], read_metadata
) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(str(i) for i in range(10)) + "\n")
    target = tmp_path / "m.tflite"
    _convert(capsys, saved_model.path, "-o", target, "--mode", "float32", "--labels", labels)
    found = read_metadata(target)
    by_name = {s["name"]: s for s in found["subgraphs"]}
    assert sorted(by_name) == ["classify", "logits"]
    for key, output in (("classify", "probabilities"), ("logits", "logits")):
        assert [t["name"] for t in by_name[key]["inputs"]] == ["features"]
        assert by_name[key]["inputs"][0]["process_units"] == []  # no normalisation given
        (out,) = by_name[key]["outputs"]
        assert out["name"] == output
        assert out["associated_files"][0]["name"] == "labels.txt"
    assert found["files"] == {"labels.txt": labels.read_text()}
    assert set(found["provenance"]["agreement"]) == {"classify", "logits"}


def test_conversion_is_byte_identical(
    functional: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(str(i) for i in range(10)) + "\n")
    outputs = []
    for name in ("a.tflite", "b.tflite"):
        target = tmp_path / name
        _convert(
            capsys,
            *(functional.path, "-o", target, "--calibration", functional.calibration),
            *("--eval", functional.eval, "--labels", labels, "--scale", "1"),
        )
        outputs.append(target.read_bytes())
    assert outputs[0] == outputs[1]
