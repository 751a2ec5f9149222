"""The dispatcher in process: ids, the header budget, auth before the body, errors in the route's
protocol shape, one log line per unhandled error, metrics per request."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from server.errors import InvalidInput, RouteNotFound
from server.settings import Settings
from server.state import build_state
from server.web.dispatch import MAX_HEADER_BYTES, Dispatcher
from server.web.http import Request, Response
from server.web.routing import Route, Table

BODIES: list[bytes] = []


async def echo(request: Request) -> Response:
    body = await request.body()
    BODIES.append(body)
    request.name_model("m")
    return Response(body)


async def bad(request: Request) -> Response:
    raise InvalidInput("no good")


async def boom(request: Request) -> Response:
    raise RuntimeError("kaboom")


def render(request: Request | None, exc: Exception) -> Response:
    status = 400 if isinstance(exc, InvalidInput) else 401 if "key" in str(exc).lower() else 500
    if isinstance(exc, RouteNotFound):
        status = 404
    return Response.json({"shape": "ours", "message": str(exc)}, status)


def _app(**settings: Any) -> Dispatcher:
    routes = [
        Route("POST", "/echo", echo),
        Route("GET", "/open", bad, auth=False),
        Route("GET", "/boom", boom, auth=False),
    ]
    state = build_state(Settings(access_log=False, **settings), [])
    return Dispatcher(state, [Table("t", routes, render, owns=("/t/",))])


def _ask(app: Dispatcher, *requests: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kcr") as client:
            return [await client.request(m, p, **kw) for m, p, kw in requests]

    return asyncio.run(go())


def test_request_ids_are_kept_when_safe_and_minted_otherwise() -> None:
    kept, minted = _ask(
        _app(),
        ("POST", "/echo", {"content": b"x", "headers": {"x-request-id": "abc-1"}}),
        ("POST", "/echo", {"content": b"x", "headers": {"x-request-id": "bad id\x01"}}),
    )
    assert kept.headers["x-request-id"] == "abc-1"
    assert len(minted.headers["x-request-id"]) == 32


def test_the_key_is_checked_before_the_body_is_read() -> None:
    BODIES.clear()
    app = _app(api_keys=("k1",), max_body_bytes=10)
    no_key, wrong, right, too_big = _ask(
        app,
        ("POST", "/echo", {"content": b"secret"}),
        ("POST", "/echo", {"content": b"secret", "headers": {"authorization": "Bearer nope"}}),
        ("POST", "/echo", {"content": b"ok", "headers": {"authorization": "Bearer k1"}}),
        ("POST", "/echo", {"content": b"x" * 11, "headers": {"authorization": "Bearer k1"}}),
    )
    assert (no_key.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert no_key.json()["shape"] == "ours"
    assert BODIES == [b"ok"]
    assert too_big.status_code == 500 and "exceeds the limit" in too_big.json()["message"]


def test_unknown_paths_under_an_owned_prefix_answer_in_the_protocol_shape_after_the_key() -> None:
    app = _app(api_keys=("k1",))
    anon, keyed, elsewhere = _ask(
        app,
        ("GET", "/t/nothing", {}),
        ("GET", "/t/nothing", {"headers": {"authorization": "Bearer k1"}}),
        ("GET", "/nothing", {}),
    )
    assert anon.status_code == 401
    assert keyed.status_code == 404 and keyed.json()["shape"] == "ours"
    assert elsewhere.status_code == 404 and elsewhere.json() == {"detail": "Not Found"}


def test_oversized_headers_are_431_in_the_protocol_shape() -> None:
    (r,) = _ask(_app(), ("GET", "/open", {"headers": {"x-big": "x" * MAX_HEADER_BYTES}}))
    assert r.status_code == 431 and r.json()["shape"] == "ours"


def test_an_unhandled_error_is_logged_once_and_rendered(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="kcr.server"):
        (r,) = _ask(_app(), ("GET", "/boom", {"headers": {"x-request-id": "rid-9"}}))
    assert r.status_code == 500 and r.json() == {"shape": "ours", "message": "kaboom"}
    logged = [rec for rec in caplog.records if "unhandled error" in rec.getMessage()]
    assert len(logged) == 1 and "rid-9" in logged[0].getMessage()


def test_every_request_is_counted_once_with_its_protocol_and_model() -> None:
    app = _app()
    _ask(app, ("POST", "/echo", {"content": b"1"}), ("GET", "/open", {}), ("GET", "/nope", {}))
    counter = app.state.metrics.requests
    # "m" is not a served model: its requests count under the one fixed label (bounded series).
    assert counter.labels("unknown", "t", "200")._value.get() == 1
    assert counter.labels("", "t", "400")._value.get() == 1
    assert counter.labels("", "other", "404")._value.get() == 1
    assert app.state.metrics.in_flight._value.get() == 0
