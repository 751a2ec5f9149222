"""The matcher follows Starlette's rules, so paths answer as they did under FastAPI's router."""

from __future__ import annotations

from server.web.http import Request, Response
from server.web.routing import Route, Router, Table


async def _ok(request: Request) -> Response:
    return Response(b"{}")


def _render(request: Request | None, exc: Exception) -> Response:
    return Response(b"{}", 500)


def _router(*routes: tuple[str, str]) -> Router:
    return Router([Table("t", [Route(m, p, _ok) for m, p in routes], _render, owns=("/o/",))])


def test_one_segment_parameters_and_path_parameters() -> None:
    router = _router(("GET", "/m/{name}"), ("POST", "/m/{name}:predict"), ("GET", "/f/{rest:path}"))
    hit = router.match("GET", "/m/iris")
    assert hit.compiled is not None and hit.params == {"name": "iris"}
    assert router.match("POST", "/m/iris:predict").params == {"name": "iris"}
    # ``{name}`` is greedy within its segment, as in Starlette: this is model "iris:predict".
    assert router.match("GET", "/m/iris:predict").params == {"name": "iris:predict"}
    assert router.match("GET", "/m/a/b").compiled is None
    assert router.match("GET", "/f/a/b/c").params == {"rest": "a/b/c"}


def test_the_first_full_match_wins_and_a_method_mismatch_is_a_405() -> None:
    router = _router(("GET", "/x"), ("POST", "/x"))
    assert router.match("POST", "/x").compiled is not None
    miss = router.match("PUT", "/x")
    assert miss.compiled is None and miss.allowed is not None and miss.allowed.route.method == "GET"


def test_a_toggled_trailing_slash_is_a_redirect_unless_the_path_is_root() -> None:
    router = _router(("GET", "/a"), ("GET", "/b/"), ("GET", "/"))
    assert router.match("GET", "/a/").redirect == "/a"
    assert router.match("GET", "/b").redirect == "/b/"
    assert router.match("POST", "/a/").redirect == "/a"  # a method mismatch still redirects first
    assert router.match("GET", "/c/").redirect is None


def test_owners_by_longest_prefix() -> None:
    router = Router(
        [
            Table("short", [], _render, owns=("/v1/",)),
            Table("long", [], _render, owns=("/v1/long/",)),
        ]
    )
    assert (router.owner("/v1/long/x") or Table("", [], _render)).protocol == "long"
    assert (router.owner("/v1/x") or Table("", [], _render)).protocol == "short"
    assert router.owner("/v2/x") is None
