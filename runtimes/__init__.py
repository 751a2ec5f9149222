"""Runtime name → module. Modules are imported only when chosen, so an sklearn image never imports
the Ollama client and vice versa. A runtime module provides ``add_arguments(parser)`` and
``build(settings, options) -> list[Model]``."""

from __future__ import annotations

import importlib
from types import ModuleType

RUNTIMES: dict[str, str] = {
    "sklearn": "runtimes.sklearn",
    "ollama": "runtimes.ollama",
}


def load_runtime(name: str) -> ModuleType:
    try:
        return importlib.import_module(RUNTIMES[name])
    except KeyError:
        raise ValueError(f"unknown runtime {name!r}; choose one of {sorted(RUNTIMES)}") from None
