"""The requests of the routing golden test and how an answer is recorded (shared with the recorder).

The answers in ``golden/routes.json`` were recorded from the server before the dispatcher replaced
the FastAPI-routed stacks (commit 31c92dc); the dispatcher must answer every one identically.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

_BINARY = "application/octet-stream"
_V2 = {"id": "1", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/", {}),
    ("HEAD", "/", {}),
    ("GET", "/v2/health/live", {}),
    ("GET", "/v2/health/ready", {}),
    ("GET", "/v2/health/ready/", {}),
    ("GET", "/v2/health/ready/?a=1", {}),
    ("POST", "/v2/health/ready", {}),
    ("HEAD", "/v2/health/ready", {}),
    ("OPTIONS", "/v2/health/ready", {}),
    ("GET", "/v1/models/iris", {}),
    ("GET", "/v1/models/iris?verbose=1", {}),
    ("PUT", "/v1/models/iris", {}),
    ("GET", "/v1/models/nope", {}),
    ("GET", "/v1/models/iris:predict", {}),
    ("GET", "/v1/models/", {}),
    ("GET", "/v1/models", {}),
    ("GET", "/v1/models/iris/", {}),
    ("POST", "/v1/models/iris:predict/", {"json": {"instances": [[6.8, 2.8, 4.8, 1.4]]}}),
    ("GET", "/v2/models/iris/ready", {}),
    ("GET", "/v2/models/ir%20is/ready", {}),
    ("GET", "/v2/models//ready", {}),
    ("GET", "/v2/models/iris/versions/1/ready", {}),
    ("GET", "/v2/models/iris/versions/1", {}),
    ("POST", "/v2/models/iris/versions/1/infer", {"json": _V2}),
    ("GET", "/v2/models/iris", {}),
    ("GET", "/v2/models/nope", {}),
    ("GET", "/v2/models", {}),
    ("GET", "/v2", {}),
    ("GET", "/v2/", {}),
    ("GET", "/no/such/route", {}),
    ("POST", "/no/such/route", {}),
    ("GET", "/metrics/", {}),
    ("POST", "/v1/models/iris:predict", {"json": {"instances": [[6.8, 2.8, 4.8, 1.4]]}}),
    ("POST", "/v1/models/iris:predict", {"content": b'{"instances": '}),
    ("POST", "/v1/models/iris:predict", {"content": b""}),
    ("POST", "/v1/models/iris:predict", {"json": {"instances": "x"}}),
    ("POST", "/v1/models/iris:predict", {"json": {"inputs": [[6.8, 2.8, 4.8, 1.4]]}}),
    ("POST", "/v1/models/nope:predict", {"json": {"instances": [[1, 2, 3, 4]]}}),
    ("GET", "/v1/models/nope:predict", {}),
    ("POST", "/v1/models/iris:explain", {"json": {"instances": [[1, 2, 3, 4]]}}),
    ("POST", "/v1/models/nope:explain", {"json": {"instances": [[1, 2, 3, 4]]}}),
    ("POST", "/v2/models/iris/infer", {"json": _V2}),
    ("POST", "/v2/models/iris/infer", {"json": {**_V2, "outputs": [{"name": "predict_proba"}]}}),
    ("POST", "/v2/models/iris/infer", {"json": {**_V2, "outputs": [{"name": "nope"}]}}),
    ("POST", "/v2/models/iris/infer", {"json": {"inputs": []}}),
    ("POST", "/v2/models/iris/infer", {"json": {"id": "2"}}),
    ("POST", "/v2/models/iris/infer", {"content": b"[1, 2"}),
    ("GET", "/v2/models/iris/infer", {}),
    ("POST", "/v2/models/nope/infer", {"json": _V2}),
    (
        "POST",
        "/v2/models/iris/infer",
        {
            "content": b'{"id":"3","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32",'
            b'"parameters":{"binary_data_size":16}}],"parameters":{"binary_data_output":true}}'
            + base64.b16decode(b"0000803F000000400000404000008040"),
            "headers": {"inference-header-content-length": "123", "content-type": _BINARY},
        },
    ),
    ("POST", "/v2/models/iris/infer", {"content": b"xx", "headers": {"content-type": _BINARY}}),
]


def answer(client: httpx.Client, method: str, path: str, kwargs: dict[str, Any]) -> list[Any]:
    """[status, headers, body] with what differs between runs (date, ids, the port) taken out."""
    r = client.request(method, path, **kwargs)
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "x-request-id")}
    if "location" in headers:
        headers["location"] = headers["location"].replace(str(client.base_url).rstrip("/"), "")
    return [r.status_code, headers, r.content.decode("latin-1")]
