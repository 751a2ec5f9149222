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
        #: Models freed by the repository extension's unload: unknown to clients until loaded again.
        self._unloaded: set[str] = set()

    def __iter__(self) -> Iterator[Model]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def names(self) -> list[str]:
        return [n for n in self._models if n not in self._unloaded]

    def get(self, name: str) -> Model:
        if name in self._unloaded:
            raise ModelNotFound(name)
        try:
            return self._models[name]
        except KeyError:
            raise ModelNotFound(name) from None

    def find(self, name: str) -> Model:
        """A served or an unloaded model (the repository extension's view)."""
        try:
            return self._models[name]
        except KeyError:
            raise ModelNotFound(name) from None

    def set_unloaded(self, name: str, unloaded: bool) -> None:
        if unloaded:
            self._unloaded.add(name)
        else:
            self._unloaded.discard(name)

    def get_ready(self, name: str) -> Model:
        model = self.get(name)
        if not model.ready:
            raise ModelNotReady(name)
        return model

    def all_ready(self) -> bool:
        """True only when every model is loaded: an empty or half-loaded server is not ready. Models
        unloaded on purpose (repository extension) do not count, unless none is left."""
        served = [m for n, m in self._models.items() if n not in self._unloaded]
        return bool(served) and all(m.ready for m in served)

    def of_kind(self, kind: str) -> list[Model]:
        return [m for m in self._models.values() if m.kind == kind]
