"""Protocol-agnostic core of kserve-custom-runtime."""

from server.app import create_app
from server.settings import Settings

__all__ = ["Settings", "create_app"]
