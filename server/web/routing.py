"""Route tables, and the one matcher that serves them.

A wing declares each route once, as a ``Route`` in a ``Table``; the dispatcher answers from the
tables (``server.web.dispatch``) and the OpenAPI document is built from the same tables
(``server.web.docs``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.web.http import Reply, Request

Endpoint = Callable[[Request], Awaitable[Reply]]
#: Renders any exception as the protocol's error response: (request, exception) -> Response.
Renderer = Callable[[Request | None, Exception], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    endpoint: Endpoint
    summary: str = ""
    #: Checked against ``--api-keys`` before the body is read; probes and metrics are open.
    auth: bool = True
    #: For the OpenAPI document only: FastAPI ``add_api_route`` keywords (responses, openapi_extra,
    #: include_in_schema...) and the pydantic models whose schemas the document must carry.
    docs: dict[str, Any] = field(default_factory=dict)
    schemas: tuple[type, ...] = ()


@dataclass(frozen=True)
class Table:
    """One protocol's routes, its error shape, and the metrics label of its requests."""

    protocol: str
    routes: Sequence[Route]
    render: Renderer
    tags: tuple[str, ...] = ()
    #: Paths under these prefixes that no route matches are answered in this protocol's error shape
    #: (after the key check) instead of the generic ``{"detail": "Not Found"}``.
    owns: tuple[str, ...] = ()
    #: Called once per answered request of this table: (route path or None, model, status code).
    count: Callable[[str | None, str, int], None] | None = None


# --- matching --------------------------------------------------------------------------------------
#
# Starlette's rules, so every path answers as it did when FastAPI routed it: ``{name}`` matches one
# segment, ``{name:path}`` the rest; the first route whose path and method match wins, a path that
# matches only with another method is a 405, and a path that would match with its trailing slash
# toggled is a 307 redirect.

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(:path)?}")


@dataclass(frozen=True)
class Compiled:
    route: Route
    table: Table
    prefix: str
    pattern: re.Pattern[str] | None  # None: the path is literal


def compile_route(route: Route, table: Table) -> Compiled:
    if "{" not in route.path:
        return Compiled(route, table, route.path, None)
    prefix = route.path[: route.path.index("{")]
    regex, last = "", 0
    for m in _PARAM.finditer(route.path):
        regex += re.escape(route.path[last : m.start()])
        regex += f"(?P<{m.group(1)}>.*)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
        last = m.end()
    regex += re.escape(route.path[last:])
    return Compiled(route, table, prefix, re.compile(regex))


class Match:
    """What the router found for (method, path): a route, a 405 (``allowed``), a redirect, or none."""

    __slots__ = ("allowed", "compiled", "params", "redirect")

    def __init__(
        self,
        compiled: Compiled | None = None,
        params: dict[str, str] | None = None,
        allowed: Compiled | None = None,
        redirect: str | None = None,
    ) -> None:
        self.compiled = compiled
        self.params = params or {}
        self.allowed = allowed
        self.redirect = redirect


_CACHE_SIZE = 4096


class Router:
    def __init__(self, tables: Sequence[Table]) -> None:
        self.tables = list(tables)
        self.routes = [compile_route(r, t) for t in tables for r in t.routes]
        self._owners = sorted(((p, t) for t in tables for p in t.owns), key=lambda pt: -len(pt[0]))
        #: (method, path) -> Match, for the paths a server is actually asked (a few per model): the
        #: hot routes skip the scan. Bounded: client-chosen paths cannot grow it without limit.
        self._cache: dict[tuple[str, str], Match] = {}

    def _find(self, method: str, path: str) -> tuple[Compiled | None, dict[str, str], Compiled | None]:
        partial: Compiled | None = None
        for c in self.routes:
            if c.pattern is None:
                if path != c.prefix:
                    continue
                params: dict[str, str] = {}
            else:
                if not path.startswith(c.prefix):
                    continue
                m = c.pattern.fullmatch(path)
                if m is None:
                    continue
                params = m.groupdict()
            if c.route.method == method:
                return c, params, None
            if partial is None:
                partial = c
        return None, {}, partial

    def match(self, method: str, path: str) -> Match:
        key = (method, path)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._match(method, path)
            if len(self._cache) < _CACHE_SIZE:
                self._cache[key] = hit
        return hit

    def _match(self, method: str, path: str) -> Match:
        found, params, partial = self._find(method, path)
        if found is not None:
            return Match(found, params)
        if partial is not None:
            return Match(allowed=partial)
        if path != "/":
            other = path[:-1] if path.endswith("/") else path + "/"
            found, _, partial = self._find(method, other)
            if found is not None or partial is not None:
                return Match(redirect=other)
        return Match()

    def owner(self, path: str) -> Table | None:
        """The table whose ``owns`` prefix is the longest one ``path`` starts with."""
        for prefix, table in self._owners:
            if path.startswith(prefix):
                return table
        return None
