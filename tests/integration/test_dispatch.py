"""The dispatcher (``server.web.dispatch``): every route answered without FastAPI, every path answered
as the FastAPI-routed server did, and the docs (the one FastAPI app) built on first use."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.routes_golden import REQUESTS, answer
from tests.procs import ROOT, ServerProcess

_BEFORE_FASTAPI = textwrap.dedent(
    """
    import asyncio, json, sys
    from server.cli import build_models, parse
    from server.app import create_app

    argv = ["serve", "sklearn", "--model-dir", sys.argv[1], "--model-name", "iris"]
    settings, options, runtime = parse(argv, {})
    models, load_times = build_models(settings, options, runtime)
    app = create_app(settings, models, load_times)
    report = {"after_create": "fastapi" in sys.modules}

    async def call(method, path, body=b""):
        scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(),
                 "query_string": b"", "headers": [(b"content-type", b"application/json")],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "scheme": "http",
                 "http_version": "1.1", "root_path": "", "asgi": {"version": "3.0"}}
        sent, messages = [], [{"type": "http.request", "body": body, "more_body": False}]
        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}
        async def send(message):
            sent.append(message)
        await app(scope, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode()

    async def main():
        answers = [
            await call("GET", "/v2/health/ready"),
            await call("GET", "/v1/models/iris"),
            await call("GET", "/v2/models/iris/ready"),
            await call("GET", "/v2/models/nope/ready"),
            await call("GET", "/metrics"),
            await call("POST", "/v1/models/iris:predict", b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}'),
            await call("POST", "/v2/models/iris/infer",
                       b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",'
                       b' "data": [6.8, 2.8, 4.8, 1.4]}]}'),
            await call("POST", "/v1/models/iris:predict", b'{"instances": "x"}'),
        ]
        report["before"] = [[s, b] for s, b in answers]
        report["fastapi_after_probes_and_predictions"] = "fastapi" in sys.modules
        report["metadata"] = await call("GET", "/v2/models/iris")
        report["fastapi_after_metadata"] = "fastapi" in sys.modules
        report["openapi"] = (await call("GET", "/openapi.json"))[0]
        report["fastapi_after_openapi"] = "fastapi" in sys.modules
        report["pydantic_v1"] = "pydantic.v1" in sys.modules

    asyncio.run(main())
    print(json.dumps(report))
    """
)


def test_every_route_is_answered_without_fastapi(model_root: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BEFORE_FASTAPI, str(model_root / "iris")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["after_create"] is False
    statuses = [status for status, _ in report["before"]]
    assert statuses == [200, 200, 200, 404, 200, 200, 200, 400], report["before"]
    assert report["before"][0][1] == '{"ready":true}'
    assert report["before"][3][1] == '{"error":"Model with name nope does not exist."}'
    assert "request_predict_seconds" in report["before"][4][1]
    assert report["before"][5][1] == '{"predictions":[1]}'
    assert report["before"][7][1].startswith('{"error":')
    assert report["fastapi_after_probes_and_predictions"] is False
    assert report["metadata"][0] == 200
    assert json.loads(report["metadata"][1])["name"] == "iris"
    assert report["fastapi_after_metadata"] is False
    assert report["openapi"] == 200 and report["fastapi_after_openapi"] is True
    assert report["pydantic_v1"] is False


# --- every path answers as it did before the dispatcher --------------------------------------


@pytest.fixture(scope="module")
def iris_only(kcr_factory: Callable[..., ServerProcess], model_root: Path) -> Iterator[ServerProcess]:
    server = kcr_factory("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris")
    yield server
    server.stop()


_GOLDEN = json.loads((Path(__file__).parent / "golden" / "routes.json").read_text())


@pytest.mark.parametrize("index", range(len(_GOLDEN)), ids=[f"{m} {p}" for m, p, _ in _GOLDEN])
def test_every_path_answers_as_the_fastapi_routed_server_did(iris_only: ServerProcess, index: int) -> None:
    """Status, headers and body, byte for byte, as recorded from the server before the dispatcher
    (FastAPI's router: 404/405 bodies, the Allow header, trailing-slash redirects, path parameters)."""
    method, path, expected = _GOLDEN[index]
    assert REQUESTS[index][:2] == (method, path)
    with httpx.Client(base_url=iris_only.url, timeout=10) as client:
        got = answer(client, method, path, REQUESTS[index][2])
    assert got == expected


def test_requests_for_the_docs_wait_for_their_build(
    kcr_factory: Callable[..., ServerProcess], model_root: Path
) -> None:
    """Metadata, model lists and docs asked for the moment the server is ready, all at once, on
    separate connections: every one is answered (none sees a half-built docs app)."""
    server = kcr_factory("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris")
    paths = ["/v2/models/iris", "/v1/models", "/v2", "/openapi.json", "/docs"] * 4

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            responses = await asyncio.gather(*(client.get(p) for p in paths))
        return [r.status_code for r in responses]

    try:
        assert asyncio.run(burst()) == [200] * len(paths)
    finally:
        server.stop()


def test_a_failed_docs_build_answers_500_and_serving_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never expected; if it happens, the docs answer 500, everything else keeps working, and the
    next request for the docs tries again."""
    import server.web.docs
    from server.app import create_app
    from server.settings import Settings

    real = server.web.docs.build_docs
    calls = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("no FastAPI here")
        return real(*args, **kwargs)

    monkeypatch.setattr(server.web.docs, "build_docs", broken)
    transport = httpx.ASGITransport(app=create_app(Settings(access_log=False), []))

    async def ask() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://kcr") as client:
            return [await client.get("/openapi.json"), await client.get("/v2/health/live"),
                    await client.get("/openapi.json")]  # fmt: skip

    docs, live, again = asyncio.run(ask())
    assert docs.status_code == 500 and docs.json() == {"error": "Internal Server Error"}
    assert live.status_code == 200
    assert again.status_code == 200 and again.json()["info"]["title"] == "kserve-custom-runtime"
