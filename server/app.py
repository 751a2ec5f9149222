"""``create_app(settings, models)``: the whole serving app from its arguments, no module-level state.

The composition root, the one module that knows every wing: it picks each wing's route table by the
models' declared ``kind`` (the probes always; KServe v1 + v2 and the repository extension for
predictive models, plus the gRPC transport as a lifespan service; the OpenAI API, under
``/openai/v1`` and ``/v1``, and Anthropic's Messages API at ``/v1/messages``, for generative ones,
sharing vLLM-named metrics) and puts them behind one dispatcher. A wing is
imported only when it is served: the facade never imports numpy, a scikit-learn server never imports
the OpenAI types, and neither imports FastAPI until someone asks for ``/docs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from starlette.types import ASGIApp

from server.kserve import probes
from server.model import GenerativeModel, Model
from server.settings import Settings
from server.state import ServerState, build_state
from server.web.dispatch import Dispatcher
from server.web.routing import Table


class App(Dispatcher):
    """The dispatcher of a serving process, with its state at ``app.state`` (tests, the CLI)."""


def create_app(
    settings: Settings, models: Sequence[Model], load_times: dict[str, float] | None = None
) -> App:
    """``load_times``: seconds each model took when the CLI loaded it before binding."""
    state = build_state(settings, models, load_times)
    tables = wing_tables(state)
    return App(state, tables, docs=lambda: _docs(tables))


def wing_tables(state: ServerState) -> list[Table]:
    tables = [probes.table(state)]
    kinds = {m.kind for m in state.registry}
    if "predictive" in kinds or not kinds:
        from server.kserve import v1, v2
        from server.kserve.dataplane import DataPlane
        from server.kserve.repository import Repository
        from server.kserve.repository import table as repository_table

        dataplane = DataPlane(state.settings, state.registry, state.metrics)
        repository = Repository(state)
        tables += [v1.table(dataplane), v2.table(dataplane), repository_table(repository)]
        if serve_grpc(state.settings):
            from server.kserve.grpc import GrpcService

            state.services.append(GrpcService(state, dataplane, repository))
    if "generative" in kinds:
        from server.anthropic import routes as anthropic
        from server.generation_metrics import GenerationMetrics
        from server.openai import routes

        generative = cast(list[GenerativeModel], state.registry.of_kind("generative"))
        shared = GenerationMetrics(state.metrics.registry, generative)
        tables.append(routes.table(state, shared))
        tables.append(anthropic.table(state, shared))
    return tables


def serve_grpc(settings: Settings) -> bool:
    """Off unless ``--enable-grpc`` (KServe serves gRPC by default): serving it costs ~0.1 s of cold
    start (0.39 -> 0.49 s) and ~14 MB of RSS, and a Knative InferenceService exposes one port, so a
    REST ISVC would pay for a port nobody can reach. The gRPC ISVC (k8s/kserve/sklearn-iris-grpc.yaml)
    passes ``--enable_grpc=true``; true without grpcio is an error (``server.cli``)."""
    return bool(settings.enable_grpc)


def grpc_installed() -> bool:
    import importlib.util

    try:
        return all(importlib.util.find_spec(name) is not None for name in ("grpc", "grpc_health"))
    except ImportError:  # a finder that says "not installed" by raising
        return False


def _docs(tables: list[Table]) -> ASGIApp:
    from server.version import version
    from server.web.docs import build_docs

    return build_docs(tables, "kserve-custom-runtime", version())
