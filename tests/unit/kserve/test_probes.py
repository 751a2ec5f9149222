"""Readiness is false until every model is loaded, and from the moment the server starts draining."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httpx

from server.app import create_app
from server.lifecycle import lifespan
from server.model import ModelMetadata
from server.settings import Settings


class SlowModel:
    kind: ClassVar[str] = "predictive"
    load_before_serving: ClassVar[bool] = False
    outputs = ("predict",)
    default_output = "predict"

    def __init__(self, name: str) -> None:
        self.name = name
        self.loaded = asyncio.Event()
        self.release = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self.loaded.is_set()

    async def load(self) -> None:
        await self.release.wait()
        self.loaded.set()

    async def unload(self) -> None:
        self.loaded.clear()

    def metadata(self) -> ModelMetadata:
        return ModelMetadata()

    def predict(self, x: Any, output: str) -> Any:
        return x[:, 0]


def test_ready_only_after_every_model_loaded() -> None:
    async def go() -> None:
        a, b = SlowModel("a"), SlowModel("b")
        app = create_app(Settings(access_log=False), [a, b])
        async with lifespan(app.state):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                r = await client.get("/v2/health/ready")
                assert r.status_code == 503 and r.json() == {"error": "Server is not ready."}
                assert (await client.get("/v1/models/a")).status_code == 503
                assert (await client.get("/v2/models/a/ready")).json() == {
                    "error": "Model with name a is not ready."
                }
                predict = await client.post("/v1/models/a:predict", json={"instances": [[1, 2]]})
                assert predict.status_code == 503
                assert (await client.get("/")).status_code == 200  # alive all along
                a.release.set()
                await a.loaded.wait()
                assert (await client.get("/v2/health/ready")).status_code == 503  # b still loading
                b.release.set()
                await b.loaded.wait()
                assert (await client.get("/v2/health/ready")).json() == {"ready": True}
                predict = await client.post("/v1/models/a:predict", json={"instances": [[1, 2]]})
                assert predict.json() == {"predictions": [1]}
                app.state.draining = True
                assert (await client.get("/v2/health/ready")).status_code == 503

    asyncio.run(go())


def test_no_models_is_not_ready() -> None:
    async def go() -> None:
        app = create_app(Settings(access_log=False), [])
        async with lifespan(app.state):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/v2/health/ready")).status_code == 503

    asyncio.run(go())
