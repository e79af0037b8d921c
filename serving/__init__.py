"""Serve a TFLite model: the Cloud Function's runtime, also usable as a Python API.

>>> from serving import Model
>>> with Model.load("model/quantized_model.tflite") as model:
...     probabilities = model.predict({"pixels": images})["probabilities"]

Importing the package loads no interpreter, TensorFlow or google-cloud-storage.

Layers, imports flowing down only::

    http/       bodies, routes, endpoints, the one error handler     (Flask)
    protocol/   TF Serving and V2 wire forms <-> InferRequest/InferResponse
    runtime     the process-wide model: lazy, loaded once, retried
    model/      interpreters, signatures, quantization; numpy only
    storage/    where the model file comes from (local or gs://)
    errors, settings, logs                                           (used by all)
"""

__version__ = "0.1.0"  # the one place: GET /v2 and /openapi.json report it; pyproject reads it

from serving.errors import ModelLoadError, ServingError
from serving.model import Model, Prediction, Signature, TensorSpec, select_backend
from serving.settings import Settings

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
