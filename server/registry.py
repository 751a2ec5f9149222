"""Name → model, and the readiness questions every router asks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from server.errors import ModelNotFound, ModelNotReady
from server.model import Model


class ModelRegistry:
    def __init__(self, models: Iterable[Model] = ()) -> None:
        self._models: dict[str, Model] = {}
        for model in models:
            if model.name in self._models:
                raise ValueError(f"two models are named {model.name!r}")
            self._models[model.name] = model

    def __iter__(self) -> Iterator[Model]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str) -> Model:
        try:
            return self._models[name]
        except KeyError:
            raise ModelNotFound(name) from None

    def get_ready(self, name: str) -> Model:
        model = self.get(name)
        if not model.ready:
            raise ModelNotReady(name)
        return model

    def all_ready(self) -> bool:
        """True only when every model is loaded: an empty or half-loaded server is not ready."""
        return bool(self._models) and all(m.ready for m in self._models.values())

    def of_kind(self, kind: str) -> list[Model]:
        return [m for m in self._models.values() if m.kind == kind]
