"""Protocol-agnostic core of kserve-custom-runtime.

``create_app`` and ``Settings`` are imported on first use: ``python -m server`` must not import
FastAPI before the serving front needs it (see ``server.front``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Settings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from server.app import create_app

        return create_app
    if name == "Settings":
        from server.settings import Settings

        return Settings
    raise AttributeError(f"module 'server' has no attribute {name!r}")
