"""An error never costs the client its keep-alive connection (KServe drops it on unhandled errors)."""

from __future__ import annotations

import http.client
import json

import pytest

from tests.procs import ServerProcess

GOOD = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]})
BAD_REQUESTS = [
    ("POST", "/v1/models/iris:predict", "{not json", 400),
    ("POST", "/v1/models/iris:predict", json.dumps({"instances": [[1, 2, 3]]}), 400),
    ("POST", "/v1/models/iris:predict", json.dumps({"instances": []}), 400),
    ("POST", "/v1/models/iris:predict", json.dumps([1, 2]), 400),
    ("POST", "/v1/models/nope:predict", GOOD, 404),
    ("POST", "/v1/models/iris:explain", GOOD, 501),
    ("POST", "/v2/models/iris/infer", "{}", 400),
    (
        "POST",
        "/v2/models/iris/infer",
        json.dumps({"inputs": [{"name": "x", "shape": [9], "datatype": "FP32", "data": [1]}]}),
        400,
    ),
    (
        "POST",
        "/v2/models/iris/infer",
        json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP16", "data": [1, 2, 3, 4]}]}),
        400,
    ),
    ("GET", "/v2/models/iris/versions/2", None, 501),
    ("GET", "/does-not-exist", None, 404),
    ("PUT", "/v1/models/iris:predict", GOOD, 405),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS)
def test_connection_survives_error(
    iris_server: ServerProcess, method: str, path: str, body: str | None, status: int
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", iris_server.port, timeout=10)
    try:
        conn.request("POST", "/v1/models/iris:predict", GOOD, {"content-type": "application/json"})
        assert conn.getresponse().read()
        sock = conn.sock
        conn.request(method, path, body, {"content-type": "application/json"})
        response = conn.getresponse()
        assert response.status == status
        assert response.getheader("connection", "").lower() != "close"
        response.read()
        conn.request("POST", "/v1/models/iris:predict", GOOD, {"content-type": "application/json"})
        ok = conn.getresponse()
        assert ok.status == 200 and json.loads(ok.read()) == {"predictions": [1]}
        assert conn.sock is sock, "the server closed the connection and the client reconnected"
    finally:
        conn.close()
