"""The runtime interface: what the core expects of a backend, and nothing else.

A runtime module in ``runtimes/`` exposes ``add_arguments(parser)`` and ``build(settings, options)``
returning a list of models. Each model declares its ``kind``; the app includes the v1/v2 routers for
``"predictive"`` models and the OpenAI router for ``"generative"`` ones. Models never see headers,
status codes or raw JSON: predictive models get decoded arrays/DataFrames, generative models get
validated pydantic requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Kind = Literal["predictive", "generative"]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: list[int]


@dataclass(frozen=True)
class ModelMetadata:
    platform: str = ""
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)


@runtime_checkable
class Model(Protocol):
    name: str
    kind: ClassVar[Kind]
    #: Load before the port is bound (fast, deterministic loads such as a pickle), so that KServe's
    #: default TCP probe stays truthful. Slow loads (pulling an LLM) run after binding instead, with
    #: readiness false meanwhile.
    load_before_serving: ClassVar[bool]

    @property
    def ready(self) -> bool: ...

    async def load(self) -> None: ...

    async def unload(self) -> None: ...

    def metadata(self) -> ModelMetadata: ...


@runtime_checkable
class PredictiveModel(Model, Protocol):
    #: Output names a request may ask for (e.g. ``("predict", "predict_proba")``).
    outputs: Sequence[str]
    #: Output used when the request names none.
    default_output: str

    def predict(self, x: Any, output: str) -> Any:
        """Synchronous CPU work on an ndarray or DataFrame; the core runs it off the event loop.

        Raises ``InvalidInput`` when the input does not fit the model.
        """
        ...


@runtime_checkable
class GenerativeModel(Model, Protocol):
    """An OpenAI-style backend. Requests and results are the pydantic models of ``server.openai_types``.

    Streams are async generators that read the first upstream chunk before their first ``yield``, so
    the router can still answer a real status code when the backend fails at once. Every stream ends
    with one chunk whose ``choices`` is empty and whose ``usage`` is set; the router drops it unless
    the client asked for ``stream_options.include_usage``. Failures are ``server.errors`` types.
    """

    def served_models(self) -> list[Any]:
        """The ``ModelCard``s clients may name (chat model, its alias, the embedding model)."""
        ...

    def queue_stats(self) -> tuple[int, int]:
        """(requests running upstream, requests waiting for a slot), for the metrics gauges."""
        ...

    async def chat(self, request: Any) -> Any: ...

    def chat_stream(self, request: Any) -> AsyncIterator[Any]: ...

    async def completion(self, request: Any) -> Any: ...

    def completion_stream(self, request: Any) -> AsyncIterator[Any]: ...

    async def embed(self, request: Any) -> Any: ...
