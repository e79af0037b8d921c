"""Serve a TFLite model: the Cloud Function's runtime, also usable as a Python API.

>>> import numpy as np
>>> from serving import Model
>>> with Model.load("model/quantized_model.tflite") as model:
...     images = np.zeros((3, 8, 8, 1), np.float32)
...     probabilities = model.predict({"pixels": images})["probabilities"]

``python -m serving`` serves a model over HTTP from any folder (:mod:`serving.__main__`);
docs/serving.md has the rest.

Importing the package loads nothing: not numpy, an interpreter, TensorFlow or
google-cloud-storage. The names below are imported on first use, so standard-library
modules such as :mod:`serving.memory` run without the serving dependencies
(``deploy.sh`` runs ``python3 -m serving.memory`` on the deployer's machine).

Layers, imports flowing down only::

    http/       bodies, routes, endpoints, the one error handler     (Flask)
    protocol/   TF Serving and V2 wire forms <-> InferRequest/InferResponse
    runtime     the process-wide model: lazy, loaded once, retried
    repository/ several models and versions: listed, loaded lazily, held within memory
    model/      engines, signatures, quantization; numpy only
    storage/    where the model file comes from (local or gs://)
    errors, settings, logs, memory, filelock, once                   (used by all)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # the one place: GET /v2 and /openapi.json report it; pyproject reads it

# name -> the module it comes from
_EXPORTS = {
    "Model": "serving.model",
    "ModelLoadError": "serving.errors",
    "Prediction": "serving.model",
    "ServingError": "serving.errors",
    "Settings": "serving.settings",
    "Signature": "serving.model",
    "TensorSpec": "serving.model",
    "select_backend": "serving.model",
}

__all__ = [
    "Model",
    "ModelLoadError",
    "Prediction",
    "ServingError",
    "Settings",
    "Signature",
    "TensorSpec",
    "select_backend",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
