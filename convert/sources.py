"""Find and load the model to convert: a Keras ``.keras``/``.h5`` file or a SavedModel.

Whatever the source, the result is a :class:`Source`: a SavedModel directory and one of its
signatures, which the converter reads and which gives the original model's predictions.
Keras models are exported to a SavedModel first, with their input and output names as the
signature's keys, so the ``.tflite`` signature says ``pixels -> probabilities`` rather than
``input_1 -> output_0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convert.errors import ConvertError

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name (signature key), shape (None where free) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype

    @property
    def shape_text(self) -> str:
        """The shape as users write it, e.g. ``(None, 8, 8, 1)``."""
        return shape_text(self.shape)


def shape_text(shape: tuple[int | None, ...]) -> str:
    """``(None, 8, 8, 1)``; a trailing comma only for rank 1, like Python's tuples."""
    return str(tuple(shape))


@dataclass
class Source:
    """The model to convert, ready for the converter and for reference predictions."""

    path: Path
    kind: str  # "keras" or "saved_model"
    signature: str
    saved_model_dir: Path
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]
    size_bytes: int
    function: Any  # the signature's tf.types.experimental.ConcreteFunction
    loaded: Any = None  # the loaded SavedModel: keeps the function's variables alive

    def predict(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The original model's outputs, by name, for one batch of inputs by name."""
        import tensorflow as tf

        args = {spec.name: tf.constant(feed[spec.name], dtype=spec.dtype) for spec in self.inputs}
        result = self.function(**args)
        return {name: np.asarray(result[name]) for name in self.outputs}


def detect_kind(path: Path) -> str:
    """``keras`` or ``saved_model`` from the path alone; a :class:`ConvertError` otherwise."""
    if not path.exists():
        raise ConvertError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "saved_model"
        raise ConvertError(f"{path}: a directory but not a SavedModel (no saved_model.pb in it)")
    if path.suffix.lower() in KERAS_SUFFIXES:
        return "keras"
    raise ConvertError(
        f"{path}: not a model; expected a Keras file ({', '.join(KERAS_SUFFIXES)}) "
        "or a SavedModel directory"
    )


def load_source(path: Path, signature: str | None, workdir: Path) -> Source:
    """Load ``path`` (exporting Keras models into ``workdir``) and describe its signature."""
    kind = detect_kind(path)
    if kind == "keras":
        if signature is not None:
            raise ConvertError(
                f"--signature applies to SavedModel directories; {path} is a Keras file"
            )
        saved_model_dir = _export_keras(path, workdir / "saved_model")
        size = path.stat().st_size
    else:
        saved_model_dir = path
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    signature = signature or DEFAULT_SIGNATURE
    loaded, function = _signature_function(saved_model_dir, signature, shown_as=path)
    kwargs = function.structured_input_signature[1]
    inputs = tuple(
        InputSpec(
            name=name,
            shape=tuple(spec.shape.as_list()) if spec.shape.rank is not None else (),
            dtype=np.dtype(spec.dtype.as_numpy_dtype),
        )
        for name, spec in kwargs.items()
    )
    if not inputs:
        raise ConvertError(f"{path}: signature {signature!r} has no tensor inputs")
    outputs = tuple(function.structured_outputs)
    return Source(path, kind, signature, saved_model_dir, inputs, outputs, size, function, loaded)


def _export_keras(path: Path, target: Path) -> Path:
    """Load a Keras file and export it as a SavedModel with named inputs and outputs."""
    import keras
    import tensorflow as tf

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises many types here; the cause goes into the message
        raise ConvertError(f"{path}: not a Keras model that can be loaded ({_brief(e)})") from e
    if not isinstance(model, keras.Model) or not model.inputs:
        raise ConvertError(f"{path}: the Keras model has no defined inputs; build it first")
    names = [tensor.name for tensor in model.inputs]
    specs = [
        tf.TensorSpec(t.shape, t.dtype, name=n) for t, n in zip(model.inputs, names, strict=True)
    ]
    output_names = _output_names(model)

    def serve(inputs: dict[str, Any]) -> dict[str, Any]:
        ordered = [inputs[name] for name in names]
        result = model(ordered[0] if len(ordered) == 1 else ordered, training=False)
        if isinstance(result, dict):
            return dict(result)
        if isinstance(result, list | tuple):
            return dict(zip(output_names, result, strict=True))
        return {output_names[0]: result}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        DEFAULT_SIGNATURE, serve, input_signature=[dict(zip(names, specs, strict=True))]
    )
    archive.write_out(str(target), verbose=False)
    return target


def _output_names(model: Any) -> list[str]:
    """Functional models name outputs after their layers; Sequential ones after the last."""
    names = getattr(model, "output_names", None)
    if names:
        return list(names)
    if len(model.outputs) == 1 and model.layers:
        return [model.layers[-1].name]
    return [f"output_{i}" for i in range(len(model.outputs))]


def _signature_function(saved_model_dir: Path, signature: str, shown_as: Path) -> tuple[Any, Any]:
    """(the loaded SavedModel, its ``signature`` function)."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(saved_model_dir))
    except Exception as e:  # corrupt protobufs, missing variables, unknown ops, ...
        raise ConvertError(f"{shown_as}: not a SavedModel that can be loaded ({_brief(e)})") from e
    available = list(loaded.signatures.keys())
    if signature not in available:
        listed = ", ".join(repr(s) for s in available) or "none"
        raise ConvertError(f"{shown_as}: no signature {signature!r}; its signatures: {listed}")
    return loaded, loaded.signatures[signature]


def _brief(error: BaseException) -> str:
    """The first non-empty line of an exception, trimmed: for one-line messages."""
    for line in str(error).splitlines():
        if line.strip():
            text = line.strip()
            return text if len(text) <= 200 else text[:197] + "..."
    return type(error).__name__
