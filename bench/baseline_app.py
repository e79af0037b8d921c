"""The usual approach: a Flask app that imports TensorFlow and loads a SavedModel at start-up.

Served by ``bench.servers`` under gunicorn with the same threading as functions-framework,
so the comparison isolates the model runtime. ``BASELINE_SAVED_MODEL`` names the SavedModel
directory; its ``serving_default`` signature must take one input. Accepts TF Serving's row
format on the same path as the function: ``POST /v1/models/model:predict
{"instances": ...}`` -> ``{"predictions": ...}``.
"""

from __future__ import annotations

import os

import flask
import numpy as np
import tensorflow as tf

app = flask.Flask(__name__)
_loaded = tf.saved_model.load(os.environ["BASELINE_SAVED_MODEL"])
_serve = _loaded.signatures["serving_default"]
(_input_name,) = _serve.structured_input_signature[1]


@app.post("/v1/models/model:predict")
def predict() -> flask.Response:
    """Predictions for ``{"instances": [...]}``."""
    body = flask.request.get_json(force=True)
    instances = tf.constant(np.asarray(body["instances"], dtype=np.float32))
    (output,) = _serve(**{_input_name: instances}).values()
    return flask.jsonify(predictions=output.numpy().tolist())
