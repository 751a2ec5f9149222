"""A FastAPI route class that renders every failure in its protocol's own error shape.

Handlers are wrapped here rather than through ``app.add_exception_handler(Exception, ...)``: Starlette
puts that catch-all in ServerErrorMiddleware, which re-raises after responding, so uvicorn closes the
keep-alive connection (KServe's behaviour). Catching inside the route keeps the connection usable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from server.auth import check_api_key
from server.errors import KcrError

logger = logging.getLogger("kcr.server")

Renderer = Callable[[Request, Exception], Response]


def make_route_class(render: Renderer) -> type[APIRoute]:
    class ProtocolRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handler(request)
                except (RequestValidationError, HTTPException) as exc:
                    return render(request, exc)
                except Exception as exc:
                    if not isinstance(exc, KcrError):
                        logger.exception(
                            "unhandled error on %s %s (request id %s)",
                            request.method,
                            request.url.path,
                            getattr(request.state, "request_id", "-"),
                        )
                    return render(request, exc)

            return guarded

    return ProtocolRoute


async def require_api_key(request: Request) -> None:
    """FastAPI dependency for protected routes; health, readiness and metrics do not use it."""
    check_api_key(request.app.state.settings.api_keys, request.headers.get("authorization"))
