"""Pictures in: a raw JPEG to ``:predict`` against a bare ``invoke()``, and its decode step.

One function server serves MobileNetV2 int8 with TFLite metadata (normalisation
``(pixel - 127.5) / 127.5``, 1000 labels; built by ``bench.models``). The same picture is
sent as a raw ``image/jpeg`` body and as TF Serving JSON numbers (already decoded and
normalised by the client), each p50 measured in alternating blocks with a bare ``invoke()``
in this process. The preprocess row times what the server does to the JPEG before
``invoke()``: header check, decode, EXIF check, normalise-and-quantize by lookup table.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from bench import latency, servers
from bench.plan import Plan
from bench.wire import TF_PATH, Form, against_invoke

MEAN = STD = 127.5


def jpeg(size: int, quality: int = 90) -> bytes:
    """A ``size`` x ``size`` RGB JPEG with smooth gradients and some noise (photo-like)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    axis = np.linspace(0, 1, size)
    base = np.stack(
        [np.outer(axis, 1 - axis), np.outer(1 - axis, axis), np.outer(axis, axis)], axis=-1
    )
    pixels = np.clip(base * 255 + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def decoded(picture: bytes) -> np.ndarray:
    """The picture as the client would send it as numbers: (1, h, w, 3) normalised float32."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(picture)).convert("RGB"), np.float32)
    return ((pixels - MEAN) / STD)[np.newaxis]


def preprocess_ms(model_path: Path, picture: bytes, count: int) -> float:
    """Median ms for the server's decode + preprocess of ``picture`` (no invoke)."""
    from serving.model import Model
    from serving.protocol import images

    with Model.load(model_path) as model:
        signature = model.default
        target = model.picture_input(signature, signature.inputs[0])
        if target is None or target.normalization is None:
            raise RuntimeError(f"{model_path} has no picture input with normalisation metadata")

        def run() -> None:
            images.to_input([picture], target, declared=images.PictureFormat.JPEG, what="x")

        return latency.median_ms(run, count)


def measure(model_path: Path, env: dict[str, str], plan: Plan, log_dir: Path) -> dict:
    """Raw JPEG and JSON numbers to ``:predict``, each p50 against a bare invoke."""
    from serving.model import Model

    with Model.load(model_path) as model:
        size = model.inputs[0].shape[1]
    picture = jpeg(size)
    x = decoded(picture)
    numbers = json.dumps({"instances": np.round(x, 4).tolist()}, separators=(",", ":")).encode()
    forms = [
        Form("raw_jpeg", "raw JPEG to :predict", TF_PATH, picture, {"Content-Type": "image/jpeg"}),
        Form(
            "json_numbers",
            "same picture as JSON numbers",
            TF_PATH,
            numbers,
            {"Content-Type": "application/json"},
        ),
    ]
    bare = latency.bare_interpreter(str(model_path), x)
    spec = servers.function_spec("fn_images", str(model_path), numbers, **env)
    count = max(plan.warm_large, 60 if plan.name == "full" else plan.warm_large)
    results: dict = {"picture": f"{size}x{size} JPEG", "forms": {}, "bodies": {}}
    server = servers.start(spec, log_dir)
    try:
        for form in forms:
            results["forms"][form.key] = against_invoke(
                server.port, form, bare.invoke, plan.warmup, count
            )
            results["bodies"][form.key] = len(form.body)
    finally:
        server.stop()
    results["preprocess_ms"] = preprocess_ms(model_path, picture, plan.invokes * 5)
    return results
