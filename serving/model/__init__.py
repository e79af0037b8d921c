"""The model layer: interpreters, signatures and predictions on numpy arrays (no wire formats)."""

from serving.model.backend import Backend, select_backend
from serving.model.model import Model, Prediction
from serving.model.tensors import Signature, TensorSpec

__all__ = ["Backend", "Model", "Prediction", "Signature", "TensorSpec", "select_backend"]
