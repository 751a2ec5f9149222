"""``create_app(settings, models)``: the whole serving app from its arguments, no module-level state.

The composition root, the one module that knows every wing: it picks each wing's route table by the
models' declared ``kind`` (the probes always; KServe v1 + v2 for predictive models; the OpenAI API,
under ``/openai/v1`` and ``/v1``, for generative ones) and puts them behind one dispatcher. A wing is
imported only when it is served: the facade never imports numpy, a scikit-learn server never imports
the OpenAI types, and neither imports FastAPI until someone asks for ``/docs``.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.kserve import probes
from server.model import Model
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

        dataplane = DataPlane(state.settings, state.registry, state.metrics)
        tables += [v1.table(dataplane), v2.table(dataplane)]
    if "generative" in kinds:
        from server.openai import routes

        tables.append(routes.table(state))
    return tables


def _docs(tables: list[Table]) -> object:
    from server.version import version
    from server.web.docs import build_docs

    return build_docs(tables, "kserve-custom-runtime", version())
