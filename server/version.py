"""The installed package's version, for ``GET /v2`` and the OpenAPI document."""

from __future__ import annotations

from functools import cache


@cache
def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("kserve-custom-runtime")
    except PackageNotFoundError:
        return "0.0.0"
