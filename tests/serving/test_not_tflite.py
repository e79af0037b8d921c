"""serving.not_tflite: the converter's sources told apart by content, anything else left alone.

Real Keras and SavedModel files are refused end to end in tests/serving/model/test_model.py
and tests/test_main.py; here, the look-alikes that must not be taken for them.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from serving.not_tflite import ConvertibleKind, convert_first, convertible_kind


def test_the_kind_is_read_from_the_content_not_the_name(tmp_path: Path) -> None:
    h5 = tmp_path / "weights.bin"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    assert convertible_kind(h5) is ConvertibleKind.HDF5
    keras = tmp_path / "model.zip"
    with zipfile.ZipFile(keras, "w") as archive:
        archive.writestr("config.json", "{}")
    assert convertible_kind(keras) is ConvertibleKind.KERAS
    saved = tmp_path / "export"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    assert convertible_kind(saved) is ConvertibleKind.SAVED_MODEL


def test_look_alikes_are_none_of_them(tmp_path: Path) -> None:
    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    broken_zip = tmp_path / "broken.keras"
    broken_zip.write_bytes(b"PK\x03\x04 and nothing else")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    text = tmp_path / "model.h5"
    text.write_text("HDF5, honestly")
    for path in (other_zip, broken_zip, empty_dir, text, tmp_path / "absent.keras"):
        assert convertible_kind(path) is None, path
        assert convert_first(path) is None


def test_the_suggested_output_sits_beside_the_source(tmp_path: Path) -> None:
    saved = tmp_path / "exports" / "1"
    saved.mkdir(parents=True)
    (saved / "saved_model.pbtxt").write_text("")
    assert convert_first(saved) == (
        f"{saved} is a TensorFlow SavedModel folder, not a TFLite model: convert it first "
        f"(python -m convert {saved} -o {saved}.tflite) and serve the .tflite file"
    )
