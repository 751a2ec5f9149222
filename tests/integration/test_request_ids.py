from __future__ import annotations

import re

import httpx

from tests.procs import ServerProcess


def test_request_id_echoed_and_generated(iris_server: ServerProcess) -> None:
    body = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
    given = httpx.post(
        f"{iris_server.url}/v1/models/iris:predict", json=body, headers={"x-request-id": "abc-123"}
    )
    assert given.headers["x-request-id"] == "abc-123"
    generated = httpx.post(f"{iris_server.url}/v1/models/iris:predict", json=body)
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    error = httpx.post(
        f"{iris_server.url}/v1/models/nope:predict", json=body, headers={"x-request-id": "e-1"}
    )
    assert error.status_code == 404 and error.headers["x-request-id"] == "e-1"
    unsafe = httpx.post(
        f"{iris_server.url}/v1/models/iris:predict", json=body, headers={"x-request-id": "a b\tc"}
    )
    assert unsafe.headers["x-request-id"] != "a b\tc"
    assert "rid=abc-123" in iris_server.log()


def test_metrics_have_kserve_histograms(iris_server: ServerProcess) -> None:
    httpx.post(f"{iris_server.url}/v1/models/iris:predict", json={"instances": [[6.8, 2.8, 4.8, 1.4]]})
    text = httpx.get(f"{iris_server.url}/metrics").text
    for name in ("request_preprocess_seconds", "request_predict_seconds", "request_postprocess_seconds"):
        assert f'{name}_bucket{{le="0.005",model_name="iris"}}' in text
        for le in (
            "0.01",
            "0.025",
            "0.05",
            "0.075",
            "0.1",
            "0.25",
            "0.5",
            "0.75",
            "1.0",
            "2.5",
            "5.0",
            "7.5",
            "10.0",
            "+Inf",
        ):
            assert f'{name}_bucket{{le="{le}",model_name="iris"}}' in text
    assert "# TYPE request_explain_seconds histogram" in text
    assert 'kcr_requests_total{code="200",model_name="iris",protocol="v1"}' in text
    assert "kcr_requests_in_flight" in text
    assert 'kcr_model_load_seconds{model_name="iris"}' in text
    openmetrics = httpx.get(
        f"{iris_server.url}/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
