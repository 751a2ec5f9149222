"""The OpenAPI document and ``/docs``: a FastAPI app built from the route tables, serving nothing else.

Each route is declared once, in its wing's table; here it becomes a FastAPI route whose endpoint is
never called (the dispatcher answers every path in the tables), so the document describes exactly
what is served. Path parameters are documented from the path template, bodies from the route's
``docs`` (``openapi_extra``) and the pydantic models it names in ``schemas``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from server.deferred_imports import hidden
from server.web.routing import Route, Table

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::path)?}")


def build_docs(tables: Sequence[Table], title: str, version: str) -> FastAPI:
    app = FastAPI(
        title=title,
        summary="KServe v1/v2 and OpenAI-compatible model server",
        version=version,
        redoc_url=None,
    )
    schemas: list[type[BaseModel]] = []
    # For every route, FastAPI imports pydantic.v1 to ask whether its types are v1 models (~1.5 MB
    # that stays). Ours never are; with pydantic.v1 hidden the answer is the same.
    with hidden("pydantic.v1"):
        for table in tables:
            for route in table.routes:
                _add(app, route, table)
                schemas.extend(s for s in route.schemas if s not in schemas)
    _publish(app, schemas)
    return app


def _add(app: FastAPI, route: Route, table: Table) -> None:
    docs = dict(route.docs)
    docs.setdefault("tags", list(table.tags))
    app.add_api_route(
        route.path, _stub(route.path), methods=[route.method], summary=route.summary or None, **docs
    )


def _stub(path: str) -> Any:
    """An endpoint whose signature names the path's parameters (FastAPI documents them from it)."""

    async def endpoint(**params: str) -> None:  # never called: the dispatcher answers first
        raise AssertionError("the dispatcher serves every documented route")

    names = [m.group(1) for m in _PARAM.finditer(path)]
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=str) for n in names]
    )
    return endpoint


def _publish(app: FastAPI, models: Sequence[type[BaseModel]]) -> None:
    """Schemas of bodies the handlers read raw (for speed and the binary extension)."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in model_schema.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components.setdefault(model.__name__, model_schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
