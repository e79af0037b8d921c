"""A model's TFLite metadata: input normalisation and value range, output labels, name.

Read from the standard TFLite metadata (tflite-support's ``metadata_schema.fbs``): the
model-level metadata entry ``TFLITE_METADATA`` names a buffer holding a ``ModelMetadata``
flatbuffer (identifier ``M001``) with one ``SubGraphMetadata`` per subgraph, whose input
and output ``TensorMetadata`` follow the subgraph's input and output order. Labels are an
associated file of type ``TENSOR_AXIS_LABELS`` inside the zip appended to the model file.
Only the few fields served are read (see :mod:`serving.model.flatbuffer`); a model without
metadata has none, and malformed metadata is ignored (the load logs a warning), never fatal.

Settings override or supply what the file lacks (:func:`with_overrides`): ``LABELS_PATH``
for classifier outputs, ``IMAGE_MEAN``/``IMAGE_STD`` for picture inputs.
"""

from __future__ import annotations

import enum
import io
import math
import mmap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from serving.model.flatbuffer import FlatbufferError, Table
from serving.model.tensors import Signature, TensorSpec

if TYPE_CHECKING:
    import zipfile

METADATA_NAME = "TFLITE_METADATA"
_MODEL_IDENTIFIER = b"TFL3"
_METADATA_IDENTIFIER = b"M001"
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_IMAGE_PROPERTIES = 2  # ContentProperties union tag
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union tag

Key = tuple[str, str]  # (signature key, tensor name as clients see it)


class MetadataError(ValueError):
    """The model's metadata is malformed (the model is then served without it)."""


class ColorSpace(enum.Enum):
    """``ImageProperties.color_space`` (``ColorSpaceType`` in the schema)."""

    UNKNOWN = 0
    RGB = 1
    GRAYSCALE = 2


class Source(str, enum.Enum):
    """Where a piece of metadata came from, as the metadata endpoints report it."""

    MODEL = "model metadata"
    SETTINGS = "settings"


@dataclass(frozen=True)
class Normalization:
    """``(raw - mean) / std``, one value for every channel or one per channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: Source = Source.MODEL

    def per_channel(self, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)`` with exactly ``channels`` values each; ValueError if they cannot."""
        return _spread(self.mean, channels, "mean"), _spread(self.std, channels, "std")

    def describe(self) -> dict[str, Any]:
        """JSON for the metadata endpoints."""
        return {"mean": list(self.mean), "std": list(self.std), "source": self.source.value}


@dataclass(frozen=True)
class InputInfo:
    """What the metadata says about one input."""

    normalization: Normalization | None = None
    value_range: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (min, max)
    color_space: ColorSpace | None = None

    def describe(self) -> dict[str, Any]:
        """JSON for the metadata endpoints (only what is known)."""
        out: dict[str, Any] = {}
        if self.normalization is not None:
            out["normalization"] = self.normalization.describe()
        if self.value_range is not None:
            low, high = self.value_range
            out["value_range"] = {"min": list(low), "max": list(high)}
        if self.color_space is not None:
            out["color_space"] = self.color_space.name
        return out


@dataclass(frozen=True)
class OutputInfo:
    """What the metadata says about one output: its labels, one per class."""

    labels: tuple[str, ...] | None = None
    source: Source = Source.MODEL

    def describe(self) -> dict[str, Any]:
        """JSON for the metadata endpoints."""
        if self.labels is None:
            return {}
        return {"labels": list(self.labels), "labels_source": self.source.value}


@dataclass(frozen=True)
class ModelMetadata:
    """The model's metadata, by ``(signature key, tensor name)``."""

    name: str | None = None
    description: str | None = None
    version: str | None = None
    inputs: Mapping[Key, InputInfo] = field(default_factory=dict)
    outputs: Mapping[Key, OutputInfo] = field(default_factory=dict)

    def input(self, signature: str, name: str) -> InputInfo:
        """What is known about an input (nothing: an empty :class:`InputInfo`)."""
        return self.inputs.get((signature, name)) or InputInfo()

    def output(self, signature: str, name: str) -> OutputInfo:
        """What is known about an output (nothing: an empty :class:`OutputInfo`)."""
        return self.outputs.get((signature, name)) or OutputInfo()

    def describe(self) -> dict[str, Any]:
        """Model-level fields as JSON (only those present)."""
        fields = {"name": self.name, "description": self.description, "version": self.version}
        return {k: v for k, v in fields.items() if v is not None}


def read(content: bytes | mmap.mmap, signatures: Sequence[Signature]) -> ModelMetadata | None:
    """The metadata of the model in ``content`` (bytes or a mapped file); None without any.

    Raises :class:`MetadataError` when the metadata is present but malformed.
    """
    import zipfile  # only here: a model without metadata never pays for importing it

    try:
        return _read(memoryview(content), content, signatures)
    except (FlatbufferError, UnicodeDecodeError, zipfile.BadZipFile, KeyError) as e:
        raise MetadataError(f"{type(e).__name__}: {e}") from e


def _read(
    buf: memoryview, content: bytes | mmap.mmap, signatures: Sequence[Signature]
) -> ModelMetadata | None:
    if bytes(buf[4:8]) != _MODEL_IDENTIFIER:
        return None
    model = Table.root(buf)
    entry = next((m for m in model.tables(6) if m.string(0) == METADATA_NAME), None)
    if entry is None:
        return None
    buffers = model.tables(4)
    index = entry.uint32(1)
    if index >= len(buffers):
        raise FlatbufferError(f"metadata buffer {index} does not exist")
    data = _buffer_data(buffers[index], buf)
    root = Table.root(memoryview(data), _METADATA_IDENTIFIER)
    archive = _archive(content)
    subgraph_meta = root.tables(3)
    subgraphs = model.tables(2)
    by_key = {d.string(2): d for d in model.tables(7)}
    inputs: dict[Key, InputInfo] = {}
    outputs: dict[Key, OutputInfo] = {}
    for signature in signatures:
        found = _placement(signature, by_key, subgraphs)
        if found is None or found[0] >= len(subgraph_meta):
            continue
        number, in_names, out_names = found
        meta = subgraph_meta[number]
        subgraph = subgraphs[number]
        for tensor, tensor_meta in zip(subgraph.uint32s(1), meta.tables(2), strict=False):
            if tensor in in_names:
                inputs[(signature.key, in_names[tensor])] = _input_info(tensor_meta)
        for tensor, tensor_meta in zip(subgraph.uint32s(2), meta.tables(3), strict=False):
            if tensor in out_names:
                info = _output_info(tensor_meta, archive)
                if info.labels is not None:
                    outputs[(signature.key, out_names[tensor])] = info
    return ModelMetadata(
        name=root.string(0),
        description=root.string(1),
        version=root.string(2),
        inputs=inputs,
        outputs=outputs,
    )


def _buffer_data(buffer: Table, buf: memoryview) -> bytes:
    """A ``Buffer``'s bytes: inline ``data``, or ``offset``/``size`` into the file (over 2 GB)."""
    offset, size = buffer.uint64(1), buffer.uint64(2)
    if offset > 1:
        if offset + size > len(buf):
            raise FlatbufferError("metadata buffer lies outside the model file")
        return bytes(buf[offset : offset + size])
    return buffer.bytes(0) or b""


def _placement(
    signature: Signature, by_key: Mapping[str | None, Table], subgraphs: Sequence[Table]
) -> tuple[int, dict[int, str], dict[int, str]] | None:
    """The subgraph a signature runs on, and its tensors' client names by tensor index."""
    definition = by_key.get(signature.key)
    if definition is not None:
        number = definition.uint32(4)
        in_names = {m.uint32(1): m.string(0) or "" for m in definition.tables(0)}
        out_names = {m.uint32(1): m.string(0) or "" for m in definition.tables(1)}
        return number, in_names, out_names
    if by_key or not signature.main or not subgraphs:
        return None
    # No signature defs: the main subgraph, tensors named by their tensor names.
    return 0, _indices(signature.inputs), _indices(signature.outputs)


def _indices(specs: Sequence[TensorSpec]) -> dict[int, str]:
    return {spec.index: spec.name for spec in specs}


def _input_info(tensor: Table) -> InputInfo:
    normalization = None
    for unit in tensor.tables(4):
        options = unit.table(1)
        if unit.uint8(0) == _NORMALIZATION_OPTIONS and options is not None:
            mean, std = tuple(options.floats(0)), tuple(options.floats(1))
            if mean and std and all(s != 0 and math.isfinite(s) for s in std):
                normalization = Normalization(mean, std)
            break
    value_range = None
    stats = tensor.table(5)
    if stats is not None:
        maximum, minimum = tuple(stats.floats(0)), tuple(stats.floats(1))
        if maximum and minimum:
            value_range = (minimum, maximum)
    color_space = None
    content = tensor.table(3)
    if content is not None and content.uint8(0) == _IMAGE_PROPERTIES:
        properties = content.table(1)
        if properties is not None:
            code = properties.int8(0)
            color_space = ColorSpace(code) if code in (1, 2) else ColorSpace.UNKNOWN
    return InputInfo(normalization, value_range, color_space)


def _output_info(tensor: Table, archive: zipfile.ZipFile | None) -> OutputInfo:
    for associated in tensor.tables(6):
        if associated.int8(2) != _TENSOR_AXIS_LABELS or archive is None:
            continue
        name = associated.string(0) or ""
        if name in archive.namelist():
            return OutputInfo(labels=parse_labels(archive.read(name).decode("utf-8")))
    return OutputInfo()


def _archive(content: bytes | mmap.mmap) -> zipfile.ZipFile | None:
    """The zip of associated files appended to the model, if any.

    A mapped file is read in place (it is file-like), never copied into the heap.
    """
    if b"PK\x05\x06" not in content[-(1 << 16) - 22 :]:
        return None
    import zipfile

    try:
        return zipfile.ZipFile(
            _Seekable(content) if isinstance(content, mmap.mmap) else io.BytesIO(content)
        )
    except zipfile.BadZipFile:
        return None


class _Seekable:
    """A mapped file as the file object zipfile reads (``mmap`` lacks ``seekable`` before 3.13)."""

    def __init__(self, mapped: mmap.mmap) -> None:
        self._mapped = mapped

    def seekable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mapped, name)


def parse_labels(text: str) -> tuple[str, ...]:
    """One label a line; trailing blank lines ignored."""
    return tuple(line.rstrip("\r") for line in text.rstrip("\r\n").split("\n")) if text else ()


def is_picture(spec: TensorSpec) -> bool:
    """Whether an input is shaped like a batch of pictures: ``[batch, height, width, 1|3]``."""
    return len(spec.shape) == 4 and spec.shape[3] in (1, 3)


def classes(spec: TensorSpec) -> int | None:
    """The class count of a ``[batch, classes]`` output, else None."""
    return spec.shape[1] if len(spec.shape) == 2 and spec.shape[1] > 0 else None


def with_overrides(
    found: ModelMetadata | None,
    signatures: Sequence[Signature],
    *,
    labels: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ModelMetadata | None:
    """``found`` with labels for every ``[batch, len(labels)]`` output and the normalisation
    ``(raw - mean) / std`` for every picture input; ValueError when nothing fits them."""
    if labels is None and mean is None and std is None:
        return found
    base = found or ModelMetadata()
    inputs, outputs = dict(base.inputs), dict(base.outputs)
    if labels is not None:
        fitting = [
            (s.key, o.name) for s in signatures for o in s.outputs if classes(o) == len(labels)
        ]
        if not fitting:
            raise ValueError(
                f"has {len(labels)} labels but no output is shaped [batch, {len(labels)}]"
            )
        for key in fitting:
            outputs[key] = OutputInfo(tuple(labels), Source.SETTINGS)
    if mean is not None or std is not None:
        norm = Normalization(tuple(mean or (0.0,)), tuple(std or (1.0,)), Source.SETTINGS)
        pictures = [(s.key, i) for s in signatures for i in s.inputs if is_picture(i)]
        if not pictures:
            raise ValueError("apply to picture inputs ([batch, height, width, 1|3]); none found")
        for key, spec in pictures:
            norm.per_channel(spec.shape[3])  # raises when the counts do not fit
            inputs[(key, spec.name)] = replace(base.input(key, spec.name), normalization=norm)
    return replace(base, inputs=inputs, outputs=outputs)


def _spread(values: tuple[float, ...], channels: int, what: str) -> tuple[float, ...]:
    if len(values) == 1:
        return values * channels
    if len(values) == channels:
        return values
    raise ValueError(f"{len(values)} {what} values for {channels} channels (give 1 or {channels})")
