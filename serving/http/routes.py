"""Every URL path reaches the function: map (method, path) to an endpoint, or 404/405."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from serving.errors import MethodNotAllowed, NotFound
from serving.http import endpoints as ep

Endpoint = Callable[[ep.Call], ep.Reply]

_NAME = r"(?P<name>[^/:]+)"
_VERSION = r"(?:/versions/(?P<version>[^/:]+))?"


@dataclass(frozen=True)
class Route:
    """A path pattern and the endpoint for each method it accepts."""

    pattern: re.Pattern[str]
    methods: dict[str, Endpoint]


def _route(pattern: str, **methods: Endpoint) -> Route:
    return Route(re.compile(pattern), methods)


ROUTES: tuple[Route, ...] = (
    # The bare function URL: status on GET, TF Serving predict on POST.
    _route(r"/", GET=ep.tf_status, POST=ep.tf_predict),
    _route(rf"/v1/models/{_NAME}{_VERSION}", GET=ep.tf_status),
    _route(rf"/v1/models/{_NAME}{_VERSION}/metadata", GET=ep.tf_metadata),
    _route(rf"/v1/models/{_NAME}{_VERSION}:predict", POST=ep.tf_predict),
    _route(rf"/v1/models/{_NAME}{_VERSION}:classify", POST=ep.tf_classify),
    _route(rf"/v1/models/{_NAME}{_VERSION}:regress", POST=ep.tf_regress),
    _route(rf"/v1/models/{_NAME}{_VERSION}:(?P<verb>\w+)", POST=ep.unsupported_verb),
    _route(r"/v2", GET=ep.v2_server_metadata),
    _route(r"/v2/health/live", GET=ep.v2_live),
    _route(r"/v2/health/ready", GET=ep.v2_ready),
    _route(rf"/v2/models/{_NAME}{_VERSION}", GET=ep.v2_model_metadata),
    _route(rf"/v2/models/{_NAME}{_VERSION}/ready", GET=ep.v2_model_ready),
    _route(rf"/v2/models/{_NAME}{_VERSION}/infer", POST=ep.v2_infer),
    _route(r"/openapi.json", GET=ep.openapi_document),
)


def match(method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
    """The endpoint and path parameters for a request; HEAD is served as GET.

    Raises :class:`NotFound` for an unknown path and :class:`MethodNotAllowed` (with
    the allowed methods) for a known path with another method.
    """
    normalized = path.rstrip("/") or "/"
    for route in ROUTES:
        found = route.pattern.fullmatch(normalized)
        if found is None:
            continue
        params = {k: v for k, v in found.groupdict().items() if v is not None}
        endpoint = route.methods.get("GET" if method == "HEAD" else method)
        if endpoint is None:
            allow = tuple(route.methods) + (("HEAD",) if "GET" in route.methods else ())
            raise MethodNotAllowed(
                f"{method} is not allowed on {path}; use {' or '.join(allow)}", allow=allow
            )
        return endpoint, params
    raise NotFound(
        f"no route for {path}; see /v1/models/{{name}}:predict (TensorFlow Serving) "
        "or /v2/models/{name}/infer (Open Inference Protocol)"
    )
