"""Turn an interpreter's load failure into a :class:`ModelLoadError` that says what to do."""

from __future__ import annotations

import re

from serving.errors import ModelLoadError
from serving.model.backend import Backend
from serving.not_tflite import convert_first

_CUSTOM_OP = re.compile(r"unresolved custom op: (\w+)")
_OP_VERSION = re.compile(r"builtin opcode '(\w+)' version '(\d+)'")


def explain(path: str, error: BaseException, backend: Backend) -> ModelLoadError:
    """A 503 error naming the file, the cause and the remedy for a failed load."""
    text = str(error)
    runtime = f"{backend.name} {backend.version}"
    if "not a valid Flatbuffer" in text or "model identifier" in text:
        # The runtime quotes the file's first bytes here, often unprintable: leave them out.
        message = f"{path} is not a TFLite flatbuffer (no valid 'TFL3' model header)"
        return ModelLoadError(convert_first(path) or message, reason="not_tflite")
    if "Could not open" in text:
        return ModelLoadError(f"model file could not be opened: {path}", reason="missing")
    if match := _CUSTOM_OP.search(text):
        return ModelLoadError(
            f"{path} uses the custom op {match.group(1)!r}, which the {runtime} runtime does "
            "not provide; convert without custom ops (or with select TF ops unavailable here)",
            reason="custom_op",
        )
    if match := _OP_VERSION.search(text):
        op, version = match.groups()
        hint = (
            "; install ai-edge-litert (pip install ai-edge-litert), the maintained runtime"
            if backend.name != "litert"
            else "; upgrade ai-edge-litert"
        )
        return ModelLoadError(
            f"{path} needs op {op} version {version}, newer than the {runtime} runtime "
            f"supports{hint}",
            reason="op_version",
        )
    return ModelLoadError(
        f"{path} could not be loaded by {runtime}: {first_line(text)}", reason="invalid"
    )


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no details"
