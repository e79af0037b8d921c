"""Write TFLite metadata into a converted model: labels, input normalisation, name, provenance.

The standard TFLite metadata schema (tflite-support's ``metadata_schema.fbs``, version
1.5.0, file identifier ``M001``), written with the ``flatbuffers`` package because no
maintained writer installs under this TensorFlow (tflite-support 0.4.4 pins protobuf < 4;
MediaPipe's wheels ship the writers without the native modules they import):

- a model-level metadata buffer named ``TFLITE_METADATA`` holds a ``ModelMetadata``:
  ``name``, ``description``, ``version``, ``min_parser_version`` ``1.0.0``, and one
  ``SubGraphMetadata`` per subgraph (in subgraph order, named after the signature key)
  whose ``input_tensor_metadata``/``output_tensor_metadata`` follow the subgraph's inputs
  and outputs, each named after its signature name;
- an input the data was normalised for carries a ``NormalizationOptions`` process unit
  with ``mean``/``std`` on raw values: the model expects ``(raw - mean) / std``;
- a classifier output given ``--labels`` lists the associated file ``labels.txt``
  (type ``TENSOR_AXIS_LABELS``), one label a line;
- associated files are packed as an uncompressed zip appended to the flatbuffer (as
  tflite-support's populator does), with fixed timestamps so rebuilds are byte-identical;
- provenance (source, conversion path, mode, agreement per output) is UTF-8 JSON in a
  second model-level metadata buffer, ``CONVERT_PROVENANCE``, which metadata parsers
  ignore (``min_parser_version`` stays ``1.0.0``).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convert import tflite_file
from convert.errors import ConvertError

METADATA_NAME = "TFLITE_METADATA"
PROVENANCE_NAME = "CONVERT_PROVENANCE"
LABELS_FILE = "labels.txt"
MIN_PARSER_VERSION = "1.0.0"  # every field written here exists since schema 1.0.0
FILE_IDENTIFIER = b"M001"

# Enum and union values from metadata_schema.fbs.
_TENSOR_AXIS_LABELS = 2
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2
_RGB, _GRAYSCALE = 1, 2
_NORMALIZATION_OPTIONS = 1
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Normalization:
    """``(raw - mean) / std`` per channel (one value: every channel)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass
class Metadata:
    """What to write; ``labels`` go to the outputs named in ``label_outputs``."""

    name: str | None = None
    description: str | None = None
    version: str | None = None
    labels: list[str] | None = None
    label_outputs: set[tuple[str, str]] = field(default_factory=set)  # (signature, output)
    normalization: dict[tuple[str, str], Normalization] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    summary: str | None = None  # appended to the description


def read_labels(path: Path) -> list[str]:
    """One label a line (trailing blank lines ignored); a :class:`ConvertError` if unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConvertError(f"--labels {path}: no such file") from None
    except IsADirectoryError:
        raise ConvertError(f"--labels {path}: is a directory; give a text file") from None
    except UnicodeDecodeError:
        raise ConvertError(f"--labels {path}: not UTF-8 text") from None
    labels = [line.rstrip("\r") for line in text.rstrip("\r\n").split("\n")] if text.strip() else []
    if not labels:
        raise ConvertError(f"--labels {path}: holds no labels (one label a line)")
    blank = [i + 1 for i, label in enumerate(labels) if not label.strip()]
    if blank:
        raise ConvertError(f"--labels {path}: line {blank[0]} is blank; one label a line")
    return labels


def normalization_on_raw(
    scale: float, mean: Sequence[float], std: Sequence[float]
) -> Normalization:
    """The calibration's ``(x * scale - mean) / std`` as ``(x - mean') / std'`` on raw x."""
    if scale == 0:
        raise ConvertError("--scale 0 maps every input to the same value")
    return Normalization(mean=tuple(m / scale for m in mean), std=tuple(s / scale for s in std))


def attach(content: bytes, metadata: Metadata) -> bytes:
    """``content`` with the metadata buffers added and the associated files appended."""
    model = tflite_file.read(content)
    tflite_file.set_metadata(model, METADATA_NAME, _model_metadata(model, metadata))
    if metadata.provenance:
        provenance = json.dumps(metadata.provenance, sort_keys=True, separators=(",", ":"))
        tflite_file.set_metadata(model, PROVENANCE_NAME, provenance.encode())
    files = {}
    if metadata.labels is not None and metadata.label_outputs:
        files[LABELS_FILE] = ("\n".join(metadata.labels) + "\n").encode()
    return tflite_file.write(model) + _zip(files)


def _zip(files: Mapping[str, bytes]) -> bytes:
    if not files:
        return b""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _model_metadata(model: Any, metadata: Metadata) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier ``M001``)."""
    import flatbuffers

    w = _Writer(flatbuffers.Builder(1024))
    by_subgraph = {s.subgraph: s for s in tflite_file.signatures(model)}
    subgraphs = []
    for index in range(len(model.subgraphs)):
        signature = by_subgraph.get(index)
        subgraphs.append(_subgraph(w, model, index, signature, metadata))
    description = "\n".join(t for t in (metadata.description, metadata.summary) if t) or None
    root = w.table(
        {
            0: w.string(metadata.name),
            1: w.string(description),
            2: w.string(metadata.version),
            3: w.offsets(subgraphs),
            7: w.string(MIN_PARSER_VERSION),
        }
    )
    w.builder.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(w.builder.Output())


def _subgraph(
    w: _Writer,
    model: Any,
    index: int,
    signature: tflite_file.SignatureInfo | None,
    metadata: Metadata,
) -> int:
    key = signature.key if signature else ""
    in_names = {t: n for n, t in signature.inputs} if signature else {}
    out_names = {t: n for n, t in signature.outputs} if signature else {}
    inputs = []
    for tensor in tflite_file.subgraph_inputs(model, index):
        name = in_names.get(tensor) or _tensor_name(model, index, tensor)
        shape = tflite_file.tensor_shape(model, index, tensor)
        norm = metadata.normalization.get((key, name))
        inputs.append(_input_tensor(w, name, shape, norm))
    outputs = []
    for tensor in tflite_file.subgraph_outputs(model, index):
        name = out_names.get(tensor) or _tensor_name(model, index, tensor)
        labelled = metadata.labels is not None and (key, name) in metadata.label_outputs
        outputs.append(_output_tensor(w, name, labelled))
    return w.table(
        {
            0: w.string(key or None),
            2: w.offsets(inputs),
            3: w.offsets(outputs),
        }
    )


def _input_tensor(w: _Writer, name: str, shape: tuple[int, ...], norm: Normalization | None) -> int:
    image = len(shape) == 4 and shape[3] in (1, 3) and shape[1] > 0 and shape[2] > 0
    if image:
        size = w.table({0: ("uint", shape[2]), 1: ("uint", shape[1])})
        color = _GRAYSCALE if shape[3] == 1 else _RGB
        properties = w.table({0: ("byte", color), 1: size})
        kind = _IMAGE_PROPERTIES
    else:
        properties, kind = w.table({}), _FEATURE_PROPERTIES
    content = w.table({0: ("ubyte", kind), 1: properties})
    units = None
    if norm is not None:
        options = w.table({0: w.floats(norm.mean), 1: w.floats(norm.std)})
        unit = w.table({0: ("ubyte", _NORMALIZATION_OPTIONS), 1: options})
        units = w.offsets([unit])
    return w.table({0: w.string(name), 3: content, 4: units})


def _output_tensor(w: _Writer, name: str, labelled: bool) -> int:
    content = w.table({0: ("ubyte", _FEATURE_PROPERTIES), 1: w.table({})})
    files = None
    if labelled:
        text = "Class labels, one a line, in the order of the output's last axis."
        label_file = w.table(
            {0: w.string(LABELS_FILE), 1: w.string(text), 2: ("byte", _TENSOR_AXIS_LABELS)}
        )
        files = w.offsets([label_file])
    return w.table({0: w.string(name), 3: content, 6: files})


def _tensor_name(model: Any, subgraph: int, tensor: int) -> str:
    name = model.subgraphs[subgraph].tensors[tensor].name
    return name.decode() if isinstance(name, bytes) else str(name)


class _Writer:
    """Tables and vectors on one ``flatbuffers.Builder`` (children before parents)."""

    def __init__(self, builder: Any) -> None:
        self.builder = builder

    def string(self, text: str | None) -> int | None:
        return None if text is None else self.builder.CreateString(text)

    def offsets(self, items: list[int]) -> int:
        b = self.builder
        b.StartVector(4, len(items), 4)
        for item in reversed(items):
            b.PrependUOffsetTRelative(item)
        return b.EndVector()

    def floats(self, values: Sequence[float]) -> int:
        b = self.builder
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependFloat32(float(value))
        return b.EndVector()

    def table(self, fields: Mapping[int, Any]) -> int:
        """A table from ``{slot: offset or (kind, scalar)}``; ``None`` values are left out."""
        b = self.builder
        b.StartObject(max(fields, default=-1) + 1)
        for slot, value in sorted(fields.items()):
            if value is None:
                continue
            if isinstance(value, tuple):
                kind, scalar = value
                prepend = {
                    "ubyte": b.PrependUint8Slot,
                    "byte": b.PrependInt8Slot,
                    "uint": b.PrependUint32Slot,
                }[kind]
                prepend(slot, scalar, 0)
            else:
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
        return b.EndObject()
