"""Completions, embeddings, models (OpenAI and KServe clients), auth, request ids, metrics."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.openai.conftest import EMBED, MODEL, Facade
from tests.openai.fake_ollama import FakeOllama
from tests.openai.schema import validate


def test_completions_non_stream_and_stream(facade: Facade, fake: FakeOllama) -> None:
    r = httpx.post(facade.base + "/completions", json={"model": MODEL, "prompt": "Say", "max_tokens": 3})
    validate("CreateCompletionResponse", r.json())
    assert r.json()["choices"][0] == {
        "index": 0,
        "text": "Hello there",
        "logprobs": None,
        "finish_reason": "length",
    }
    assert fake.bodies("/api/generate")[-1]["options"] == {"num_predict": 3}
    client = facade.client()
    text = ""
    for chunk in client.completions.create(model=MODEL, prompt=["a", "b"], stream=True, max_tokens=16):
        body = chunk.model_dump(exclude_unset=True)
        # The schema has no null finish_reason, yet OpenAI (and vLLM) stream null until the last chunk.
        for choice in body["choices"]:
            if choice["finish_reason"] is None:
                choice["finish_reason"] = "stop"
        validate("CreateCompletionResponse", body)
        text += chunk.choices[0].text if chunk.choices else ""
    assert text == "Hello there!" * 2


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings(facade: Facade, encoding: str) -> None:
    r = httpx.post(
        facade.base + "/embeddings", json={"model": EMBED, "input": ["a", "b"], "encoding_format": encoding}
    )
    body = r.json()
    assert r.status_code == 200 and len(body["data"]) == 2
    if encoding == "float":
        validate("CreateEmbeddingResponse", body)
    else:
        raw = base64.b64decode(body["data"][0]["embedding"])
        assert len(struct.unpack(f"<{len(raw) // 4}f", raw)) == 4
    # The SDK asks for base64 by default and decodes it itself.
    result = facade.client().embeddings.create(model=EMBED, input="a")
    assert len(result.data[0].embedding) == 4 and result.usage.prompt_tokens == 3


def test_models_for_openai_and_kserve_clients(facade: Facade) -> None:
    client = facade.client()
    ids = [m.id for m in client.models.list()]
    assert ids == [MODEL, EMBED]
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    body = httpx.get(facade.base + "/models").json()
    validate("ListModelsResponse", body)
    assert body["models"] == [MODEL, EMBED]  # KServe v1's list shape, in the same body
    one = httpx.get(facade.url + "/openai/v1/models/" + MODEL.replace(":", "%3A")).json()
    validate("Model", one)
    assert one["ready"] is True and one["name"] == MODEL


@pytest.mark.anyio
async def test_kserve_client_sees_readiness(facade: Facade) -> None:
    from kserve import InferenceRESTClient, RESTConfig

    async with InferenceRESTClient(RESTConfig(protocol="v1")) as v1:
        assert await v1.is_model_ready(facade.url, MODEL) is True
        assert await v1.is_server_live(facade.url) is True
    async with InferenceRESTClient(RESTConfig(protocol="v2")) as v2:
        assert await v2.is_server_ready(facade.url) is True


def test_api_keys(fake: FakeOllama, facade_factory: Callable[..., Facade]) -> None:
    secured = facade_factory("--ollama-host", fake.url, "--model", MODEL, environ={"KCR_API_KEYS": "k1,k2"})
    with pytest.raises(openai.AuthenticationError) as err:
        secured.client(api_key="wrong").models.list()
    assert err.value.code == "invalid_api_key" and err.value.status_code == 401
    assert (
        httpx.post(secured.base + "/chat/completions", json={}).status_code == 401
    )  # auth before validation
    assert [m.id for m in secured.client(api_key="k2").models.list()] == [MODEL]
    for open_path in ("/v2/health/ready", "/v2/health/live", "/metrics", "/"):
        assert httpx.get(secured.url + open_path).status_code == 200


def test_request_id_echoed(facade: Facade) -> None:
    r = httpx.get(facade.base + "/models", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    with pytest.raises(openai.NotFoundError) as err:
        facade.client().chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}], extra_headers={"x-request-id": "rid-9"}
        )
    assert err.value.request_id == "rid-9"


def test_metrics(facade: Facade) -> None:
    client = facade.client()
    for _ in client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
    ):
        pass
    text = httpx.get(facade.url + "/metrics").text
    for name in (
        'kcr_openai_requests_total{code="200",model="smollm2:135m",route="/chat/completions"}',
        "kcr_openai_time_to_first_token_seconds_count",
        "kcr_openai_tokens_per_second_bucket",
        'kcr_openai_prompt_tokens_total{model="smollm2:135m"}',
        'kcr_openai_completion_tokens_total{model="smollm2:135m"}',
        'kcr_openai_in_flight{model="smollm2:135m"}',
        'kcr_openai_queued{model="smollm2:135m"}',
    ):
        assert name in text, name
