"""What a model path holds when it is a model the converter takes, not a TFLite flatbuffer.

A Keras ``.keras`` archive, a Keras/HDF5 ``.h5`` file or a SavedModel folder given as
``MODEL_PATH`` is a common first mistake: the answer says which it is and the command that
turns it into a ``.tflite``, instead of only that a ``TFL3`` header is missing. Read on the
error path only (a few bytes, or a folder's listing).
"""

from __future__ import annotations

import enum
import os
import zipfile
from pathlib import Path

_HDF5 = b"\x89HDF\r\n\x1a\n"
_ZIP = b"PK\x03\x04"
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class ConvertibleKind(enum.Enum):
    """A source ``python -m convert`` takes; ``value`` says what it is."""

    SAVED_MODEL = "a TensorFlow SavedModel folder"
    KERAS = "a Keras model (.keras archive)"
    HDF5 = "an HDF5 file (a Keras .h5 model)"


def convertible_kind(path: str | os.PathLike[str]) -> ConvertibleKind | None:
    """Which convertible source ``path`` is, judged by its content; None for anything else."""
    path = Path(path)
    try:
        if path.is_dir():
            found = any((path / name).is_file() for name in _SAVED_MODEL_FILES)
            return ConvertibleKind.SAVED_MODEL if found else None
        with path.open("rb") as file:
            head = file.read(len(_HDF5))
        if head.startswith(_HDF5):
            return ConvertibleKind.HDF5
        if head.startswith(_ZIP):
            with zipfile.ZipFile(path) as archive:  # Keras 3 saves config.json in a zip
                return ConvertibleKind.KERAS if "config.json" in archive.namelist() else None
    except (OSError, zipfile.BadZipFile):
        return None
    return None


def convert_first(path: str | os.PathLike[str]) -> str | None:
    """``<path> is <kind>, not a TFLite model: convert it first ...``, or None when ``path``
    is none of the converter's sources."""
    kind = convertible_kind(path)
    if kind is None:
        return None
    source = Path(path)
    out = source.with_suffix(".tflite") if source.name else Path("model.tflite")
    return (
        f"{path} is {kind.value}, not a TFLite model: convert it first "
        f"(python -m convert {path} -o {out}) and serve the .tflite file"
    )
