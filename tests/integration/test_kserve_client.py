"""The kserve SDK's own InferenceRESTClient drives our server over v1 and v2."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

from tests.procs import ServerProcess

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_v1_predict_and_health(iris_server: ServerProcess) -> None:
    async def go() -> None:
        async with InferenceRESTClient(RESTConfig(protocol="v1")) as client:
            assert await client.is_server_live(iris_server.url)
            # (the SDK offers server readiness only for v2)
            assert await client.is_model_ready(iris_server.url, "iris")
            result = await client.infer(iris_server.url, {"instances": ROWS}, model_name="iris")
            assert result == {"predictions": [1, 1, 0]}

    run(go())


@pytest.mark.parametrize("binary", [False, True])
def test_v2_infer(iris_server: ServerProcess, binary: bool) -> None:
    async def go() -> None:
        async with InferenceRESTClient(RESTConfig(protocol="v2")) as client:
            assert await client.is_server_ready(iris_server.url)
            assert await client.is_model_ready(iris_server.url, "iris-rf")
            tensor = InferInput("input-0", [3, 4], "FP32")
            tensor.set_data_from_numpy(np.array(ROWS, dtype=np.float32), binary_data=binary)
            request = InferRequest(
                model_name="iris-rf",
                infer_inputs=[tensor],
                request_id="abc",
                parameters={"binary_data_output": True} if binary else None,
            )
            response = await client.infer(iris_server.url, request, model_name="iris-rf")
            assert response.id == "abc"
            assert response.outputs[0].name == "output-0"
            assert response.outputs[0].as_numpy().tolist() == [1, 1, 0]

    run(go())


def test_v2_errors_raise_http_status_error(iris_server: ServerProcess) -> None:
    import httpx

    async def go() -> None:
        async with InferenceRESTClient(RESTConfig(protocol="v2")) as client:
            tensor = InferInput("input-0", [1, 3], "FP32")
            tensor.set_data_from_numpy(np.array([[1, 2, 3]], dtype=np.float32), binary_data=False)
            with pytest.raises(httpx.HTTPStatusError) as info:
                await client.infer(iris_server.url, InferRequest("iris", [tensor]), model_name="iris")
            assert info.value.response.status_code == 400
            assert "expecting 4 features" in info.value.response.json()["error"]

    run(go())
