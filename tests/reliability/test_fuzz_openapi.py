"""Fuzz every route of the app's own OpenAPI document with schemathesis, in process, for both runtimes.

Positive and negative cases (schemathesis' default modes). For every response: no 5xx (except 501,
KServe's documented answer for ``:explain`` without an explainer), no hang (10 s per request), every
4xx/5xx in its protocol's error shape (v1/v2/health ``{"error": str}``, OpenAI routes
``{"error": {message, type, param, code}}``), every SSE stream well formed. Path parameters are
replaced by a served model name in most cases so the fuzzer gets past the 404. The document is the
one the app serves (built from the same route tables the dispatcher answers from).

``KCR_FUZZ_SCALE`` scales the number of examples (default 1: about 10,000 requests in total).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.openai.fake_ollama import FakeOllama
from tests.reliability.conftest import CHAT_MODEL, EMBED_MODEL, ollama_app, sklearn_app
from tests.reliability.shapes import FUZZ_COUNTS, error_problem, sse_problem

SCALE = float(os.environ.get("KCR_FUZZ_SCALE", "1"))
TIMEOUT = 10
SKLEARN_MODELS = ["iris", "iris-rf", "iris-labels", "iris-pipeline"]
#: Examples per operation.
SKLEARN_BUDGET = {
    "POST /v1/models/{model_name}:predict": 2800,
    "POST /v2/models/{model_name}/infer": 2800,
}
OPENAI_BUDGET = {"chat/completions": 400, "completions": 400, "embeddings": 300}
DEFAULT_BUDGET = 150


def _examples(n: int) -> int:
    return max(1, int(n * SCALE))


def fuzz(operation: Any, n: int, names: list[str], send: Callable[[Any], None]) -> None:
    """Run ``send(case)`` on ``n`` generated cases of ``operation``."""

    @settings(
        max_examples=_examples(n),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=operation.as_strategy(), pick=st.integers(0, 2 * len(names)))
    def run(case: Any, pick: int) -> None:
        # Two times in three: a served model, so the request reaches the codec and the model.
        if pick < 2 * len(names):
            name = names[pick % len(names)]
            for key in ("model_name", "model_id"):
                if case.path_parameters and key in case.path_parameters:
                    case.path_parameters[key] = name
            if isinstance(case.body, dict) and "model" in case.body:
                case.body["model"] = name
        send(case)

    run()


def check(case: Any, response: Any, generative: bool) -> None:
    status, content = response.status_code, response.content
    path = case.formatted_path
    where = f"{case.operation.label} -> {status}\n{case.as_curl_command()}\n{content[:500]!r}"
    explain = path.endswith(":explain") and status == 501
    assert status < 500 or explain, "server error: " + where
    if status >= 400:
        problem = error_problem(status, content, path, generative)
        assert problem is None, f"{problem}\n{where}"
    elif _header(response, "content-type").startswith("text/event-stream"):
        problem = sse_problem(content)
        assert problem is None, f"{problem}\n{where}"


def _header(response: Any, name: str) -> str:
    values = response.headers.get(name) or [""]  # schemathesis: name -> list of values
    return values[0]


# --- sklearn --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sklearn_fuzz_app(model_root: Path) -> Any:
    return sklearn_app(model_root)


@pytest.fixture(scope="module")
def sklearn_schema(sklearn_fuzz_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", sklearn_fuzz_app)


def _operations(schema: Any) -> Iterator[Any]:
    for result in schema.get_all_operations():
        yield result.ok()


def test_fuzz_sklearn_routes(sklearn_fuzz_app: Any, sklearn_schema: Any) -> None:
    started = time.monotonic()
    labels = []
    for operation in _operations(sklearn_schema):
        labels.append(operation.label)

        def send(case: Any) -> None:
            response = case.call(timeout=TIMEOUT, app=sklearn_fuzz_app)
            FUZZ_COUNTS["sklearn"] += 1
            check(case, response, generative=False)

        fuzz(operation, SKLEARN_BUDGET.get(operation.label, DEFAULT_BUDGET), SKLEARN_MODELS, send)
    assert "POST /v2/models/{model_name}/infer" in labels and "POST /v1/models/{model_name}:predict" in labels
    print(f"sklearn fuzz: {len(labels)} operations in {time.monotonic() - started:.1f}s")


# --- OpenAI facade over the scripted fake Ollama ---------------------------------------------------


@pytest.fixture(scope="module")
def openai_fuzz_app(fake_ollama: FakeOllama) -> Any:
    return ollama_app(fake_ollama.url)


def test_fuzz_openai_routes(openai_fuzz_app: Any, fake_ollama: FakeOllama) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", openai_fuzz_app)
    started = time.monotonic()
    labels = []
    for operation in _operations(schema):
        labels.append(operation.label)
        budget = next((n for key, n in OPENAI_BUDGET.items() if operation.path.endswith("/" + key)), None)

        def send(case: Any) -> None:
            response = case.call(timeout=TIMEOUT)
            FUZZ_COUNTS["ollama/OpenAI"] += 1
            check(case, response, generative=True)

        fuzz(operation, budget or DEFAULT_BUDGET, [CHAT_MODEL, EMBED_MODEL], send)
    assert {"POST /v1/chat/completions", "POST /openai/v1/chat/completions"} <= set(labels)
    print(f"openai fuzz: {len(labels)} operations in {time.monotonic() - started:.1f}s")


@pytest.mark.parametrize("path", ["/v1/completions", "/openai/v1/chat/completions"])
def test_stream_cut_by_a_cancel_scope_ends_cleanly(openai_fuzz_app: Any, path: str) -> None:
    # Found by the fuzzer: schemathesis' ASGI transport reads an event stream up to its event limit,
    # then cancels the app through an anyio cancel scope while also reporting the disconnect. The
    # stream's own cancel used to land in the same loop iteration, and the merged CancelledError
    # escaped the transport's scope (anyio#1214). n=5 makes the stream longer than the limit.
    schema = schemathesis.openapi.from_asgi("/openapi.json", openai_fuzz_app)
    body: dict[str, Any] = {"model": CHAT_MODEL, "n": 5, "stream": True}
    if "chat" in path:
        body["messages"] = [{"role": "user", "content": "hi"}]
    else:
        body["prompt"] = ""
    deadline = time.monotonic() + 10  # the model loads in the background when the app starts
    for _ in range(3):
        case = schema[path]["POST"].Case(body=body, media_type="application/json")
        response = case.call(timeout=TIMEOUT)
        while response.status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
            response = case.call(timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        assert response.content.startswith(b"data: {") and sse_problem(response.content) is None
