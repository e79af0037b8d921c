"""Find and load the model to convert: a Keras ``.keras``/``.h5`` file or a SavedModel.

Whatever the source, the result is a :class:`Source`: a SavedModel directory, the loaded
object, and the signatures to convert (every one unless asked otherwise), each of which
gives the original model's predictions. Keras models are exported to a SavedModel first,
with their input and output names as the signature's keys, so the ``.tflite`` signature
says ``pixels -> probabilities`` rather than ``input_1 -> output_0``. A SavedModel without
signatures is converted through its traced ``__call__``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convert.errors import ConvertError
from convert.specs import InputSpec, Signature

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
DEFAULT_SIGNATURE = "serving_default"


@dataclass
class Source:
    """The model to convert, ready for the converter and for reference predictions.

    ``paths`` lists the conversion paths to try, best first (see :mod:`convert.quantize`):
    ``saved_model`` (TensorFlow's SavedModel importer), ``concrete_functions`` (the loaded
    object's signature functions, with their variables frozen from the loaded object) and
    ``call`` (a SavedModel without signatures: its traced ``__call__``).
    """

    path: Path
    kind: str  # "keras" or "saved_model"
    saved_model_dir: Path
    signatures: dict[str, Signature]
    size_bytes: int
    loaded: Any  # the loaded SavedModel: keeps the functions' variables alive
    paths: tuple[str, ...] = ("saved_model", "concrete_functions")
    notes: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """The signature keys to convert, in order."""
        return list(self.signatures)

    @property
    def main(self) -> Signature:
        """The first signature (the only one of a single-signature source)."""
        return next(iter(self.signatures.values()))

    # The single-signature view, as before several signatures were supported.
    @property
    def signature(self) -> str:
        """The first signature's key."""
        return self.main.key

    @property
    def inputs(self) -> tuple[InputSpec, ...]:
        """The first signature's inputs."""
        return self.main.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        """The first signature's outputs."""
        return self.main.outputs

    def predict(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The first signature's outputs for one batch of inputs by name."""
        return self.main.predict(feed)


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


def load_source(path: Path, signature: str | Sequence[str] | None, workdir: Path) -> Source:
    """Load ``path`` (exporting Keras models into ``workdir``) and describe its signatures.

    ``signature``: one key or several to convert; ``None`` means every signature.
    """
    wanted = [signature] if isinstance(signature, str) else list(signature or [])
    kind = detect_kind(path)
    if kind == "keras":
        if wanted:
            raise ConvertError(
                f"--signature applies to SavedModel directories; {path} is a Keras file"
            )
        saved_model_dir = _export_keras(path, workdir / "saved_model")
        size = path.stat().st_size
    else:
        saved_model_dir = path
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    loaded = _load(saved_model_dir, shown_as=path)
    notes: list[str] = []
    available = list(loaded.signatures.keys())
    if not available:
        signatures = {DEFAULT_SIGNATURE: _traced_call(loaded, wanted, path, notes)}
        paths: tuple[str, ...] = ("call",)
    else:
        keys = wanted or _default_keys(loaded, available, notes)
        unknown = [k for k in keys if k not in available]
        if unknown:
            listed = ", ".join(repr(s) for s in available)
            raise ConvertError(f"{path}: no signature {unknown[0]!r}; its signatures: {listed}")
        signatures = {k: _describe(k, loaded.signatures[k], path) for k in dict.fromkeys(keys)}
        paths = ("saved_model", "concrete_functions")
        if hasattr(loaded, "_default_save_signature"):
            # tf.saved_model.save of a Keras model: TensorFlow's importer leaves its
            # variables unread (READ_VARIABLE ops), so freeze them from the loaded object.
            paths = ("concrete_functions", "saved_model")
    return Source(path, kind, saved_model_dir, signatures, size, loaded, paths, notes)


def _default_keys(loaded: Any, available: list[str], notes: list[str]) -> list[str]:
    """Every signature, but ``serve`` once when it is ``model.export()``'s alias."""
    if (
        "serve" in available
        and DEFAULT_SIGNATURE in available
        and hasattr(loaded, "serve")
        and not hasattr(loaded, "_default_save_signature")
    ):
        notes.append(
            "signature 'serve' is model.export()'s alias of 'serving_default': converted once "
            "(--signature serve to keep that name)"
        )
        return [k for k in available if k != "serve"]
    return available


def _describe(key: str, function: Any, shown_as: Path) -> Signature:
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
        raise ConvertError(f"{shown_as}: signature {key!r} has no tensor inputs")
    outputs = function.structured_outputs
    return Signature(key, inputs, tuple(outputs), function, output_shapes=_shapes(dict(outputs)))


def _shapes(outputs: Mapping[str, Any]) -> dict[str, tuple[int | None, ...]]:
    """Output shapes by name where known (TensorSpecs or symbolic tensors)."""
    shapes = {}
    for name, spec in outputs.items():
        shape = getattr(spec, "shape", None)
        if shape is not None and shape.rank is not None:
            shapes[name] = tuple(shape.as_list())
    return shapes


def _traced_call(loaded: Any, wanted: list[str], shown_as: Path, notes: list[str]) -> Signature:
    """A SavedModel without signatures (TF Hub style): its traced ``__call__``."""
    import tensorflow as tf

    call = loaded.__call__ if callable(loaded) else None
    traced = list(getattr(call, "concrete_functions", None) or [])
    usable = [
        f
        for f in traced
        if not f.structured_input_signature[1]
        and f.structured_input_signature[0]
        and all(isinstance(s, tf.TensorSpec) for s in f.structured_input_signature[0])
    ]
    if not usable:
        raise ConvertError(
            f"{shown_as}: a SavedModel with no signatures and no __call__ traced for tensor "
            "inputs; save it with signatures={'serving_default': ...}"
        )
    if wanted and wanted != [DEFAULT_SIGNATURE]:
        raise ConvertError(
            f"{shown_as}: has no signatures (only a traced __call__, converted as "
            f"{DEFAULT_SIGNATURE!r}); drop --signature"
        )
    function = usable[0]
    specs = function.structured_input_signature[0]
    names = [spec.name or f"input_{i}" for i, spec in enumerate(specs)]
    if len(set(names)) != len(names):
        names = [f"input_{i}" for i in range(len(specs))]
    inputs = tuple(
        InputSpec(
            name=name,
            shape=tuple(spec.shape.as_list()) if spec.shape.rank is not None else (),
            dtype=np.dtype(spec.dtype.as_numpy_dtype),
        )
        for name, spec in zip(names, specs, strict=True)
    )
    outputs = function.structured_outputs
    if isinstance(outputs, Mapping):
        output_names = tuple(outputs)
    elif isinstance(outputs, list | tuple):
        output_names = tuple(f"output_{i}" for i in range(len(outputs)))
    else:
        output_names = ("output_0",)

    def named(**tensors: Any) -> dict[str, Any]:
        result = function(*[tensors[name] for name in names])
        if isinstance(result, Mapping):
            return dict(result)
        if isinstance(result, list | tuple):
            return dict(zip(output_names, result, strict=True))
        return {output_names[0]: result}

    shapes = ", ".join(f"{s.name} {s.shape_text}" for s in inputs)
    extra = f" (of {len(traced)} traced)" if len(traced) > 1 else ""
    notes.append(
        f"no signatures: converted the traced __call__{extra} ({shapes}) "
        f"as signature {DEFAULT_SIGNATURE!r}"
    )
    if isinstance(outputs, Mapping):
        specs_out = dict(outputs)
    elif isinstance(outputs, list | tuple):
        specs_out = dict(zip(output_names, outputs, strict=True))
    else:
        specs_out = {output_names[0]: outputs}
    return Signature(
        DEFAULT_SIGNATURE,
        inputs,
        output_names,
        named,
        concrete=function,
        output_shapes=_shapes(specs_out),
    )


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


def _load(saved_model_dir: Path, shown_as: Path) -> Any:
    """The loaded SavedModel (``tf.saved_model.load``)."""
    import tensorflow as tf

    try:
        return tf.saved_model.load(str(saved_model_dir))
    except Exception as e:  # corrupt protobufs, missing variables, unknown ops, ...
        raise ConvertError(f"{shown_as}: not a SavedModel that can be loaded ({_brief(e)})") from e


def _brief(error: BaseException) -> str:
    """The first non-empty line of an exception, trimmed: for one-line messages."""
    for line in str(error).splitlines():
        if line.strip():
            text = line.strip()
            return text if len(text) <= 200 else text[:197] + "..."
    return type(error).__name__


def renamed(
    source: Source, input_names: Sequence[str], output_names: Sequence[str], workdir: Path
) -> Source:
    """``source`` with its tensors served under the names ``--input-names`` and
    ``--output-names`` give (:mod:`convert.names`), and a note saying where the names came
    from; ``source`` itself when no flag is given.

    Each signature is wrapped in a function whose inputs and outputs carry the new names and
    saved, with the loaded model's variables, as a SavedModel in ``workdir``: every
    conversion path then reads the new names from the signature, as it would from a model
    saved with them.
    """
    from convert import names

    if not input_names and not output_names:
        served = "; ".join(
            f"{sig.key}: {', '.join(s.name for s in sig.inputs)} -> {', '.join(sig.outputs)}"
            for sig in source.signatures.values()
        )
        how = (
            "the Keras model's input and output layer names"
            if source.kind == "keras"
            else "the SavedModel signature's keys"
        )
        source.notes.append(
            f"warning: the served tensor names ({served}) come from how the model was saved "
            f"({how}): clients send and read them; fix them with --input-names and "
            "--output-names"
        )
        return source
    import tensorflow as tf

    module = tf.Module()
    module.source = source.loaded  # tracks the variables the wrappers read
    functions, changes = {}, []
    for key, sig in source.signatures.items():
        inputs = names.resolve(input_names, [s.name for s in sig.inputs], "--input-names")
        outputs = names.resolve(output_names, list(sig.outputs), "--output-names")
        changes += [f"{old} -> {new}" for old, new in {**inputs, **outputs}.items()]
        functions[key] = _renamed_function(sig, inputs, outputs)
    target = workdir / "renamed"
    tf.saved_model.save(module, str(target), signatures=functions)
    loaded = _load(target, shown_as=source.path)
    signatures = {k: _describe(k, loaded.signatures[k], source.path) for k in source.signatures}
    notes = [*source.notes, f"served tensor names set by the flags: {', '.join(changes)}"]
    paths = ("saved_model", "concrete_functions")
    return Source(
        source.path, source.kind, target, signatures, source.size_bytes, loaded, paths, notes
    )


def _renamed_function(sig: Signature, inputs: dict[str, str], outputs: dict[str, str]) -> Any:
    """A concrete function taking ``sig``'s inputs and giving its outputs under new names."""
    import tensorflow as tf

    old = [spec.name for spec in sig.inputs]
    specs = [
        tf.TensorSpec(spec.shape, spec.dtype, name=inputs.get(spec.name, spec.name))
        for spec in sig.inputs
    ]

    @tf.function(input_signature=specs)
    def serve(*tensors: Any) -> dict[str, Any]:
        result = sig.function(**dict(zip(old, tensors, strict=True)))
        return {outputs.get(name, name): result[name] for name in sig.outputs}

    return serve.get_concrete_function()
