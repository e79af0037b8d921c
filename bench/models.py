"""Build (once, cached) the networks the benchmark serves: SavedModels and .tflite files.

Run in its own process (``python -m bench.models --variant full``) so the benchmark's own
process never imports TensorFlow. Everything lands in ``build/bench/<VERSION>-<variant>/``
with a ``manifest.json`` written last: a directory without it is rebuilt from scratch.

- ``digits``: the bundled model's network (``model/train_digits.build_model``) with seeded
  random weights, as a SavedModel for the Flask + TensorFlow baseline (the function serves
  the trained ``model/quantized_model.tflite``; weights do not change the work done).
- ``mobilenet``: ``keras.applications.MobileNetV2(weights=None)`` (random weights, nothing
  downloaded) as a SavedModel and as .tflite in four modes through the converter's own
  ``convert.quantize.convert``. ``full`` is the real size (224x224, alpha 1.0); ``quick``
  is a small stand-in (96x96, alpha 0.35) so the smoke test fits in its time budget.
- ``mlp-float32.tflite`` and ``mlp-int8.tflite``: a real-size MLP (``full``: 4 blocks of
  Dense 1024 -> 4096 -> 1024, 128 MB float32 and 32 MB int8; ``quick``: 2 blocks of
  512 -> 1024 -> 512, 8 MB and 2 MB) with random weights, for ``bench.weights``: where memory
  is the weights, not Python.
- ``mobilenet-int8-pictures.tflite``: the int8 model with TFLite metadata written by the
  converter's own writer (``convert.metadata``): input normalisation ``(pixel - 127.5) /
  127.5`` (raw 0..255 to the calibration's -1..1) and 1000 labels, for ``bench.images``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "bench"
VERSION = "v3"  # bump when what is built changes: old caches are then ignored
MODES = ("float32", "dynamic", "float16", "int8")


@dataclass(frozen=True)
class Variant:
    """Size of the MobileNetV2 stand-in and how much calibration data quantizes it."""

    image_size: int
    alpha: float
    calibration_samples: int
    mlp_blocks: int  # Dense width -> hidden -> width, this many times
    mlp_width: int
    mlp_hidden: int


VARIANTS = {
    "full": Variant(224, 1.0, 32, mlp_blocks=4, mlp_width=1024, mlp_hidden=4096),
    "quick": Variant(96, 0.35, 8, mlp_blocks=2, mlp_width=512, mlp_hidden=1024),
}


def cache_dir(variant: str) -> Path:
    """Where ``variant`` is built."""
    return BUILD / f"{VERSION}-{variant}"


def _train_digits_module():
    """``model/train_digits.py`` (a script, not a package) imported by path."""
    spec = importlib.util.spec_from_file_location(
        "train_digits", REPO / "model" / "train_digits.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _export(keras_model, name: str, out: Path) -> tuple[Path, str, list[int]]:
    """Save ``keras_model`` as .keras and as a SavedModel the way the converter exports it."""
    from convert.sources import load_source

    keras_path = out / f"{name}.keras"
    keras_model.save(keras_path)
    source = load_source(keras_path, None, out / f"{name}-export")
    saved_model = out / f"{name}-saved_model"
    shutil.move(str(source.saved_model_dir), saved_model)
    shutil.rmtree(out / f"{name}-export", ignore_errors=True)
    (spec,) = source.inputs
    return saved_model, spec.name, [int(d) if d is not None else -1 for d in spec.shape]


def build(variant: str) -> dict:
    """Build every artifact of ``variant`` into a fresh directory; return the manifest."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from convert.calibration import Dataset
    from convert.quantize import convert

    v = VARIANTS[variant]
    final = cache_dir(variant)
    # Built aside and renamed into place: a concurrent run never sees half a build.
    out = final.with_name(f".{final.name}-{os.getpid()}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    digits_dir, digits_input, digits_shape = _export(
        _train_digits_module().build_model(), "digits", out
    )
    timings["digits_export_s"] = time.perf_counter() - started

    started = time.perf_counter()
    mobilenet = keras.applications.MobileNetV2(
        input_shape=(v.image_size, v.image_size, 3), alpha=v.alpha, weights=None, classes=1000
    )
    mobilenet_dir, mobilenet_input, mobilenet_shape = _export(mobilenet, "mobilenet", out)
    timings["mobilenet_export_s"] = time.perf_counter() - started

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (v.calibration_samples, *mobilenet_shape[1:]))
    calibration = Dataset({mobilenet_input: images.astype(np.float32)}, None, "random images")
    tflite: dict[str, str] = {}
    for mode in MODES:
        started = time.perf_counter()
        data = convert(
            mobilenet_dir, "serving_default", mode, calibration if mode == "int8" else None
        )
        path = out / f"mobilenet-{mode}.tflite"
        path.write_bytes(data)
        tflite[mode] = path.name
        timings[f"convert_{mode}_s"] = time.perf_counter() - started

    started = time.perf_counter()
    # Keras' export prints where it saved; stdout carries the manifest only.
    with contextlib.redirect_stdout(sys.stderr):
        mlp = _mlp(v, out, rng)
    timings["mlp_s"] = time.perf_counter() - started

    started = time.perf_counter()
    pictures = out / "mobilenet-int8-pictures.tflite"
    with_picture_metadata(out / tflite["int8"], pictures)
    timings["picture_metadata_s"] = time.perf_counter() - started

    manifest = {
        "version": VERSION,
        "pictures": {"tflite": pictures.name, "mean": PICTURE_MEAN, "std": PICTURE_STD},
        "variant": variant,
        "mobilenet": {
            "description": f"MobileNetV2 {v.image_size}x{v.image_size} alpha {v.alpha}",
            "saved_model": mobilenet_dir.name,
            "input": mobilenet_input,
            "shape": mobilenet_shape,
            "parameters": int(mobilenet.count_params()),
            "tflite": tflite,
            "calibration_samples": v.calibration_samples,
        },
        "digits": {"saved_model": digits_dir.name, "input": digits_input, "shape": digits_shape},
        "mlp": mlp,
        "timings": {k: round(s, 2) for k, s in timings.items()},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if load_manifest(variant) is None:
        shutil.rmtree(final, ignore_errors=True)  # an incomplete or outdated build
    try:
        out.rename(final)
    except OSError:  # another run finished the same build first: use that one
        shutil.rmtree(out, ignore_errors=True)
    return manifest


def _mlp(v: Variant, out: Path, rng: np.random.Generator) -> dict:
    """The real-size MLP as float32 and int8 .tflite (int8 in and out), straight from Keras."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((v.mlp_width,), name="features")
    x = inputs
    for _ in range(v.mlp_blocks):
        x = keras.layers.Dense(v.mlp_hidden, activation="relu")(x)
        x = keras.layers.Dense(v.mlp_width)(x)
    model = keras.Model(inputs, x)
    files = {}
    for mode in ("float32", "int8"):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: (
                [rng.standard_normal((1, v.mlp_width)).astype(np.float32)] for _ in range(8)
            )
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        path = out / f"mlp-{mode}.tflite"
        path.write_bytes(converter.convert())
        files[mode] = path.name
    return {
        "description": f"MLP {v.mlp_blocks} x Dense {v.mlp_width}->{v.mlp_hidden}->{v.mlp_width}",
        "input": "features",
        "shape": [-1, v.mlp_width],
        "parameters": int(model.count_params()),
        "tflite": files,
    }


PICTURE_MEAN = PICTURE_STD = 127.5


def with_picture_metadata(source: Path, target: Path) -> None:
    """Write ``source`` with picture normalisation and 1000 labels in its TFLite metadata."""
    from convert import metadata, tflite_file

    content = source.read_bytes()
    (signature,) = tflite_file.signatures(tflite_file.read(content))
    (input_name, _), (output_name, _) = signature.inputs[0], signature.outputs[0]
    found = metadata.Metadata(
        name="MobileNetV2 (random weights)",
        labels=[f"class {i}" for i in range(1000)],
        label_outputs={(signature.key, output_name)},
        normalization={
            (signature.key, input_name): metadata.Normalization((PICTURE_MEAN,), (PICTURE_STD,))
        },
    )
    target.write_bytes(metadata.attach(content, found))


def load_manifest(variant: str) -> dict | None:
    """The manifest of a complete build of ``variant``, or None."""
    path = cache_dir(variant) / "manifest.json"
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text())
    return manifest if manifest.get("version") == VERSION else None


def main(argv: list[str] | None = None) -> None:
    """Build ``--variant`` unless a complete cached build exists (``--force`` rebuilds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="full")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    manifest = None if args.force else load_manifest(args.variant)
    if manifest is None:
        manifest = build(args.variant)
    json.dump(manifest, sys.stdout)


if __name__ == "__main__":
    main()
