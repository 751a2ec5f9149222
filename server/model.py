"""The runtime interface: what the core expects of a backend, and nothing else.

A runtime module in ``runtimes/`` exposes ``add_arguments(parser)`` and ``build(settings, options)``
returning a list of models. Each model declares its ``kind``; the app includes the v1/v2 routers for
``"predictive"`` models and the OpenAI router for ``"generative"`` ones. Models never see headers,
status codes or raw JSON: predictive models get decoded arrays/DataFrames, generative models get
``server.generation`` requests and yield its events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # ~10 ms of dataclasses that a scikit-learn server never uses
    from server.generation import EmbeddingRequest, EmbeddingResult, Event, GenerationRequest, ServedModel

Kind = Literal["predictive", "generative"]


@dataclass(frozen=True)
class TensorSpec:
    """One input or output in the Open Inference Protocol's datatype names; -1 marks the batch."""

    name: str
    datatype: str
    shape: list[int]


@dataclass(frozen=True)
class ModelMetadata:
    platform: str = ""
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    #: Class labels in the order of the class-score columns (Triton's classification extension).
    labels: tuple[str, ...] = ()


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
    """A text-generation backend, in ``server.generation``'s neutral terms (no protocol types).

    ``generate`` returns an async iterator that reads the first upstream chunk before its first
    event, so a wing can still answer a real status code when the backend fails at once. Every
    stream ends with one ``Usage`` event. Failures are ``server.errors`` types.
    """

    def served_models(self) -> list[ServedModel]:
        """The names clients may send (chat model, its alias, the embedding model)."""
        ...

    def queue_stats(self) -> tuple[int, int]:
        """(requests running upstream, requests waiting for a slot), for the metrics gauges."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[Event]: ...

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult: ...
