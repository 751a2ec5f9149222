"""The serving front (``server.front``): probes and predictions answered before FastAPI is imported,
the same answers as the FastAPI app for every route, and requests for FastAPI's routes served once
its background build is done."""

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

from tests.procs import ROOT, ServerProcess

_BEFORE_FASTAPI = textwrap.dedent(
    """
    import asyncio, json, sys
    from server.cli import build_models, parse
    from server.front import ServingFront, create_server

    argv = ["serve", "sklearn", "--model-dir", sys.argv[1], "--model-name", "iris"]
    settings, options, runtime = parse(argv, {})
    models, load_times = build_models(settings, options, runtime)
    app = create_server(settings, models, load_times)
    report = {"front": isinstance(app, ServingFront), "after_create": "fastapi" in sys.modules}

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
        # A route only FastAPI serves: the front builds it (no lifespan ran here) and waits for it.
        report["metadata"] = await call("GET", "/v2/models/iris")
        report["fastapi_after_metadata"] = "fastapi" in sys.modules
        report["pydantic_v1"] = "pydantic.v1" in sys.modules

    asyncio.run(main())
    print(json.dumps(report))
    """
)


def test_probes_and_predictions_are_answered_before_fastapi_is_imported(model_root: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BEFORE_FASTAPI, str(model_root / "iris")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["front"] is True
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
    assert report["fastapi_after_metadata"] is True
    assert report["pydantic_v1"] is False


# --- the front and the FastAPI app answer alike -------------------------------------------------

_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/", {}),
    ("GET", "/v2/health/live", {}),
    ("GET", "/v2/health/ready", {}),
    ("GET", "/v2/health/ready/", {}),
    ("POST", "/v2/health/ready", {}),
    ("HEAD", "/v2/health/ready", {}),
    ("GET", "/v1/models/iris", {}),
    ("GET", "/v1/models/iris?verbose=1", {}),
    ("PUT", "/v1/models/iris", {}),
    ("GET", "/v1/models/nope", {}),
    ("GET", "/v1/models/iris:predict", {}),
    ("GET", "/v1/models/", {}),
    ("GET", "/v1/models", {}),
    ("GET", "/v2/models/iris/ready", {}),
    ("GET", "/v2/models/ir%20is/ready", {}),
    ("GET", "/v2/models//ready", {}),
    ("GET", "/v2/models/iris/versions/1/ready", {}),
    ("GET", "/v2/models/iris", {}),
    ("GET", "/v2/models/nope", {}),
    ("GET", "/v2", {}),
    ("GET", "/no/such/route", {}),
    ("POST", "/v1/models/iris:predict", {"json": {"instances": [[6.8, 2.8, 4.8, 1.4]]}}),
    ("POST", "/v1/models/iris:predict", {"content": b'{"instances": '}),
    ("POST", "/v1/models/nope:predict", {"json": {"instances": [[1, 2, 3, 4]]}}),
    ("POST", "/v1/models/iris:explain", {"json": {"instances": [[1, 2, 3, 4]]}}),
    (
        "POST",
        "/v2/models/iris/infer",
        {
            "json": {
                "id": "1",
                "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
            }
        },
    ),
    ("POST", "/v2/models/iris/infer", {"json": {"inputs": []}}),
]


@pytest.fixture(scope="module")
def front_and_fastapi(
    kcr_factory: Callable[..., ServerProcess], model_root: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    args = ("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris")
    front = kcr_factory(*args)
    plain = kcr_factory(*args, env={"KCR_FAST_PATH": "false"})
    yield front, plain
    front.stop()
    plain.stop()


def _answer(client: httpx.Client, method: str, path: str, kwargs: dict[str, Any]) -> tuple[Any, ...]:
    r = client.request(method, path, **kwargs)
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "x-request-id")}
    if "location" in headers:  # redirects name the server's own port
        headers["location"] = headers["location"].replace(str(client.base_url).rstrip("/"), "")
    return r.status_code, headers, r.content


@pytest.mark.parametrize(("method", "path", "kwargs"), _REQUESTS, ids=[f"{m} {p}" for m, p, _ in _REQUESTS])
def test_the_front_answers_like_the_fastapi_app(
    front_and_fastapi: tuple[ServerProcess, ServerProcess], method: str, path: str, kwargs: dict[str, Any]
) -> None:
    front, plain = front_and_fastapi
    with httpx.Client(base_url=front.url, timeout=10) as a, httpx.Client(base_url=plain.url, timeout=10) as b:
        ours, theirs = _answer(a, method, path, kwargs), _answer(b, method, path, kwargs)
    assert ours == theirs


def test_requests_for_fastapi_routes_wait_for_its_build(
    kcr_factory: Callable[..., ServerProcess], model_root: Path
) -> None:
    """Metadata, model lists and docs asked for the moment the server is ready, all at once, on
    separate connections: every one is answered (none sees a half-built app)."""
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


def test_a_failed_fastapi_build_answers_500_in_kserve_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never expected; if it happens, FastAPI's routes answer a KServe error and the probes and
    predictions keep working."""
    import server.app
    from server.front import ServingFront
    from server.settings import Settings
    from server.state import build_state

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no FastAPI here")

    monkeypatch.setattr(server.app, "create_fastapi", broken)
    front = ServingFront(build_state(Settings(access_log=False), []))
    transport = httpx.ASGITransport(app=front)

    async def ask() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://kcr") as client:
            return [await client.get("/v2/models"), await client.get("/v2/health/live")]

    metadata, live = asyncio.run(ask())
    assert metadata.status_code == 500
    assert metadata.json() == {"error": "RuntimeError : no FastAPI here"}
    assert live.status_code == 200
