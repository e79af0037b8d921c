"""The function (target ``predict``): hand the request to the serving runtime.

Importing this module loads nothing heavy; the model is loaded on the first request
that needs it and reused by every warm request (see ``serving.runtime``).
"""

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from serving.http import app


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    """TensorFlow Serving REST and Open Inference Protocol routes for the served model."""
    return app.handle(request)


# functions-framework answers /favicon.ico and /robots.txt itself (404): in JSON too.
functions_framework.errorhandler(HTTPException)(app.framework_error)
