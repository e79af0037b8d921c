"""Serve a TFLite model: the Cloud Function's runtime, also usable as a Python API.

>>> from serving import Model
>>> with Model.load("model/quantized_model.tflite") as model:
...     probabilities = model.predict({"pixels": images})["probabilities"]

Importing the package loads no interpreter, TensorFlow or google-cloud-storage.
"""

from serving.errors import ModelLoadError, ServingError
from serving.model import Model, Prediction
from serving.settings import Settings
from serving.tensors import TensorSpec

__all__ = ["Model", "ModelLoadError", "Prediction", "ServingError", "Settings", "TensorSpec"]
