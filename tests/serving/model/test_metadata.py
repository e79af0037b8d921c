"""serving.model.metadata: TFLite metadata read from real models (the digits one and converted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.model import metadata
from serving.model.flatbuffer import FlatbufferError, Table
from serving.model.metadata import ColorSpace, MetadataError, Normalization, Source
from tests.conftest import load_or_skip

DIGITS = tuple(str(i) for i in range(10))


def test_the_digits_model_has_labels_normalisation_and_name(digits_model: Path):
    with load_or_skip(digits_model) as model:
        found = model.metadata
        signature = model.default
    assert found is not None
    assert found.name == "digits_cnn"
    assert "8x8 grey picture" in (found.description or "")
    pixels = found.input(signature.key, "pixels")
    assert pixels.normalization == Normalization((0.0,), (255.0,))
    assert pixels.color_space is ColorSpace.GRAYSCALE
    assert found.output(signature.key, "probabilities").labels == DIGITS


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_converted_models_read_back(picture_models: Path, mode: str):
    with load_or_skip(picture_models / f"{mode}.tflite") as model:
        found = model.metadata
    assert found is not None
    assert (found.name, found.version) == ("Pictures", "3")
    image = found.input("serving_default", "image")
    assert image.normalization == Normalization((127.0,), (128.0,))
    assert image.color_space is ColorSpace.RGB
    assert found.output("serving_default", "probs").labels == ("cat", "dog", "bird", "fish")


def test_a_model_without_metadata_has_none(models: Path):
    with load_or_skip(models / "float32.tflite") as model:
        assert model.metadata is None
        assert model.metadata_error is None
        assert model.labels(model.default, model.outputs[0]) is None


def test_malformed_metadata_is_reported_not_fatal(digits_model: Path, tmp_path: Path):
    content = bytearray(digits_model.read_bytes())
    at = content.find(b"M001")  # the metadata buffer's file identifier
    assert at > 4
    start = at - 4  # the root offset of the ModelMetadata flatbuffer
    content[start : start + 4] = (10**8).to_bytes(4, "little")
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(bytes(content))
    with load_or_skip(broken) as model:
        assert model.metadata is None
        assert "outside" in (model.metadata_error or "")
        assert model.outputs[0].name == "probabilities"  # served anyway
    with load_or_skip(digits_model) as model, pytest.raises(MetadataError, match="outside"):
        metadata.read(bytes(content), model.signatures)


def test_flatbuffer_reads_stay_inside_the_buffer():
    with pytest.raises(FlatbufferError, match="outside the 6-byte buffer"):
        Table.root(b"\xff\xff\x00\x00\x00\x00")


def test_overrides_supply_labels_and_normalisation(models: Path):
    with load_or_skip(models / "float32.tflite") as model:
        signatures = model.signatures
    labels = [f"class {i}" for i in range(10)]
    found = metadata.with_overrides(None, signatures, labels=labels, mean=[1.0], std=[2.0])
    assert found is not None
    assert found.output("serving_default", "output_0").labels == tuple(labels)
    assert found.output("serving_default", "output_0").source is Source.SETTINGS
    norm = found.input("serving_default", "pixels").normalization
    assert norm == Normalization((1.0,), (2.0,), Source.SETTINGS)
    with pytest.raises(ValueError, match=r"has 3 labels but no output is shaped \[batch, 3\]"):
        metadata.with_overrides(None, signatures, labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="3 mean values for 1 channels"):
        metadata.with_overrides(None, signatures, mean=[1.0, 2.0, 3.0])
    assert metadata.with_overrides(None, signatures) is None
