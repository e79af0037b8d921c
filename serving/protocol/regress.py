"""TF Serving's Regress API: one number per example, from a signature's one regression output.

``{"signature_name": ..., "examples": [{"<input>": value}, ...]}`` (values as for predict)
answers ``{"results": [value, ...]}``, one per example, as TensorFlow Serving does
(https://www.tensorflow.org/tfx/serving/api_rest#classify_and_regress_api). TF Serving
runs a signature whose inputs are serialized tf.Example protos; a TFLite model has none,
so the examples' values feed the signature's inputs by name, and its output must hold
one float per example: shaped ``[batch]`` or ``[batch, 1]``.
"""

from __future__ import annotations

import numpy as np

from serving.errors import BadRequest
from serving.model import Model, Signature, TensorSpec
from serving.model.tensors import shape_text
from serving.protocol import jsonio, tfserving
from serving.protocol.types import InferRequest


def regression_output(signature: Signature) -> TensorSpec:
    """The signature's one output holding a float per example; 400 naming its outputs."""
    outputs = signature.outputs
    if len(outputs) == 1 and _one_float_per_example(outputs[0]):
        return outputs[0]
    listed = ", ".join(f"{s.name} {shape_text(s.shape)} {s.client_dtype}" for s in outputs)
    raise BadRequest(
        f"regress needs a signature with one float output shaped [batch] or [batch, 1]; "
        f"signature {signature.key!r} has {listed}: use :predict for its raw outputs"
    )


def _one_float_per_example(spec: TensorSpec) -> bool:
    return spec.client_dtype.kind == "f" and (len(spec.shape) == 1 or spec.shape[1:] == (1,))


def decode_regress(data: bytes, model: Model, *, max_image_pixels: int) -> InferRequest:
    """The request in a Regress body; 400 before running unless the signature regresses."""
    _, request = tfserving.decode_examples(
        data, model, "regress", max_image_pixels=max_image_pixels
    )
    regression_output(model.signature(request.signature))
    return request


def encode_regress(values: np.ndarray, examples: int) -> bytes:
    """``{"results": [...]}``: the regression output, one value per example."""
    flat = np.ascontiguousarray(values).reshape(-1)
    if flat.size != examples:  # a graph whose output does not follow its batch
        raise BadRequest(
            f"the model answered {flat.size} values for {examples} examples: "
            "use :predict for its raw outputs"
        )
    return jsonio.dumps({"results": flat}, finite=jsonio.all_finite([flat]))
