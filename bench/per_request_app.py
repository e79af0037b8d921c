"""The anti-pattern: a Flask app that loads the model inside every request.

A common first attempt at serverless inference: no global state, so each request builds a
TFLite interpreter from the file, allocates its tensors, runs once and throws it away.
``PER_REQUEST_MODEL`` names the ``.tflite`` file (one input, one output; int8 inputs and
outputs are (de)quantized as the function does). Same route and body as the function.
"""

from __future__ import annotations

import os

import flask
import numpy as np
from ai_edge_litert.interpreter import Interpreter

app = flask.Flask(__name__)
MODEL_PATH = os.environ["PER_REQUEST_MODEL"]


@app.post("/v1/models/model:predict")
def predict() -> flask.Response:
    """Predictions for ``{"instances": [...]}``, with a new interpreter for this request."""
    x = np.asarray(flask.request.get_json(force=True)["instances"], dtype=np.float32)
    interpreter = Interpreter(model_path=MODEL_PATH, num_threads=1)
    (inp,) = interpreter.get_input_details()
    (out,) = interpreter.get_output_details()
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    scale, zero_point = inp["quantization"]
    if scale:
        limits = np.iinfo(inp["dtype"])
        x = np.clip(np.round(x / scale + zero_point), limits.min, limits.max)
    interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"]).astype(np.float32)
    scale, zero_point = out["quantization"]
    if scale:
        y = (y - zero_point) * scale
    return flask.jsonify(predictions=y.tolist())
