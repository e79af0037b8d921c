"""Read and edit a ``.tflite`` flatbuffer: its signatures, its ops, its metadata buffers.

Uses TensorFlow's generated reader for the TFLite schema (``schema_py_generated`` and
``flatbuffer_utils``, shipped in the TensorFlow wheel the converter already needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Ops a converted model contains when it reads variables the converter did not freeze:
# such a model runs on uninitialised weights (garbage, or an invoke failure).
VARIABLE_OPS = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"})


@dataclass(frozen=True)
class SignatureInfo:
    """One signature of a ``.tflite``: key, subgraph, and tensor indices by name (in order)."""

    key: str
    subgraph: int
    inputs: tuple[tuple[str, int], ...]
    outputs: tuple[tuple[str, int], ...]


def _schema() -> Any:
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def read(content: bytes) -> Any:
    """The model as the schema's mutable object tree (``ModelT``)."""
    schema = _schema()
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(content), 0))


def write(model: Any) -> bytes:
    """The object tree back to flatbuffer bytes (deterministic for the same tree)."""
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def signatures(model: Any) -> list[SignatureInfo]:
    """The model's signatures in file order."""
    found = []
    for sig in model.signatureDefs or []:
        found.append(
            SignatureInfo(
                key=_text(sig.signatureKey),
                subgraph=sig.subgraphIndex,
                inputs=tuple((_text(t.name), t.tensorIndex) for t in sig.inputs or []),
                outputs=tuple((_text(t.name), t.tensorIndex) for t in sig.outputs or []),
            )
        )
    return found


def op_names(model: Any) -> set[str]:
    """Names of the builtin (or custom) ops the model uses."""
    schema = _schema()
    by_code = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = set()
    for code in model.operatorCodes or []:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            names.add(_text(code.customCode))
        else:
            names.add(by_code.get(builtin, str(builtin)))
    return names


def rename_signatures(model: Any, keys: list[str]) -> None:
    """Give the model's signatures ``keys``, in file order (same count required)."""
    defs = model.signatureDefs or []
    if len(defs) != len(keys):
        raise ValueError(f"{len(defs)} signatures in the model, {len(keys)} keys given")
    for sig, key in zip(defs, keys, strict=True):
        sig.signatureKey = key


def set_metadata(model: Any, name: str, content: bytes) -> None:
    """Add (or replace) the model-level metadata buffer ``name``."""
    import numpy as np

    schema = _schema()
    data = np.frombuffer(content, dtype=np.uint8).copy()
    for entry in model.metadata or []:
        if _text(entry.name) == name:
            model.buffers[entry.buffer].data = data
            return
    buffer = schema.BufferT()
    buffer.data = data
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]


def subgraph_inputs(model: Any, index: int) -> list[int]:
    """Tensor indices of subgraph ``index``'s inputs, in order."""
    return [int(i) for i in model.subgraphs[index].inputs]


def subgraph_outputs(model: Any, index: int) -> list[int]:
    """Tensor indices of subgraph ``index``'s outputs, in order."""
    return [int(i) for i in model.subgraphs[index].outputs]


def tensor_shape(model: Any, subgraph: int, tensor: int) -> tuple[int, ...]:
    """A tensor's shape as stored (-1 where free, from ``shapeSignature`` when present)."""
    t = model.subgraphs[subgraph].tensors[tensor]
    shape = t.shapeSignature if t.shapeSignature is not None and len(t.shapeSignature) else t.shape
    return tuple(int(d) for d in (shape if shape is not None else ()))


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8") if isinstance(value, bytes) else value
