"""Print a ``.tflite``'s TFLite metadata as JSON, read with tflite-support's generated code.

Runs in its own virtual environment (``requirements-metadata-reader.txt``), so the tests
check the converter's metadata with a reader that shares no code with its writer:
``python read_metadata.py MODEL.tflite``.
"""

from __future__ import annotations

import json
import sys
import zipfile

from tensorflow_lite_support.metadata import metadata_schema_py_generated as meta
from tensorflow_lite_support.metadata import schema_py_generated as schema


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8")


def _content(tensor: meta.TensorMetadataT) -> dict:
    content = tensor.content
    found: dict = {"properties_type": content.contentPropertiesType if content else None}
    if (
        content is not None
        and content.contentPropertiesType == meta.ContentProperties.ImageProperties
    ):
        props = content.contentProperties
        found["color_space"] = props.colorSpace
        found["size"] = [props.defaultSize.width, props.defaultSize.height]
    return found


def _units(tensor: meta.TensorMetadataT) -> list[dict]:
    units = []
    for unit in tensor.processUnits or []:
        if unit.optionsType == meta.ProcessUnitOptions.NormalizationOptions:
            units.append(
                {
                    "type": "NormalizationOptions",
                    "mean": [float(v) for v in unit.options.mean],
                    "std": [float(v) for v in unit.options.std],
                }
            )
        else:
            units.append({"type": unit.optionsType})
    return units


def read(path: str) -> dict:
    raw = open(path, "rb").read()  # noqa: SIM115 - a script; closes on exit
    model = schema.Model.GetRootAsModel(bytearray(raw), 0)
    buffers = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffers[_text(entry.Name())] = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    data = buffers["TFLITE_METADATA"]
    assert meta.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0)
    root = meta.ModelMetadataT.InitFromObj(meta.ModelMetadata.GetRootAsModelMetadata(data, 0))
    subgraphs = []
    for sub in root.subgraphMetadata or []:
        subgraphs.append(
            {
                "name": _text(sub.name),
                "inputs": [
                    {"name": _text(t.name), "content": _content(t), "process_units": _units(t)}
                    for t in sub.inputTensorMetadata or []
                ],
                "outputs": [
                    {
                        "name": _text(t.name),
                        "associated_files": [
                            {"name": _text(f.name), "type": f.type} for f in t.associatedFiles or []
                        ],
                    }
                    for t in sub.outputTensorMetadata or []
                ],
            }
        )
    files = {}
    if zipfile.is_zipfile(path):  # associated files, appended to the flatbuffer
        with zipfile.ZipFile(path) as archive:
            files = {name: archive.read(name).decode("utf-8") for name in archive.namelist()}
    provenance = buffers.get("CONVERT_PROVENANCE")
    return {
        "metadata_buffers": sorted(buffers),
        "name": _text(root.name),
        "description": _text(root.description),
        "version": _text(root.version),
        "min_parser_version": _text(root.minParserVersion),
        "subgraphs": subgraphs,
        "files": files,
        "provenance": None if provenance is None else json.loads(provenance),
        "TENSOR_AXIS_LABELS": meta.AssociatedFileType.TENSOR_AXIS_LABELS,
        "GRAYSCALE": meta.ColorSpaceType.GRAYSCALE,
        "ImageProperties": meta.ContentProperties.ImageProperties,
    }


if __name__ == "__main__":
    print(json.dumps(read(sys.argv[1])))
