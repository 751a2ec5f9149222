"""The OpenAI facade as its image installs it (``kserve-custom-runtime[ollama]``): no numpy, scipy,
scikit-learn, joblib or pandas. A real ``kcr serve ollama`` process in which those packages look
uninstalled (``tests/uninstalled.py``) starts, becomes ready and answers the official OpenAI SDK,
streaming and not; an import of any of them anywhere on its path fails the test.

CI's image tests caught this once (the serving front imported the predict path, hence numpy, for
every runtime); this catches it in the Python suite, without podman.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.openai.fake_ollama import FakeOllama
from tests.procs import ServerProcess, start_kcr
from tests.uninstalled import missing_in_child, uninstalled_env

CHAT_MODEL = "smollm2:135m"
PREDICTIVE_STACK = ("numpy", "scipy", "sklearn", "joblib", "pandas")


@pytest.fixture(scope="module")
def facade_only_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return uninstalled_env(tmp_path_factory.mktemp("facade-only"), *PREDICTIVE_STACK)


@pytest.fixture(scope="module")
def fake_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(models=(CHAT_MODEL,)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def facade(fake_ollama: FakeOllama, facade_only_env: dict[str, str]) -> Iterator[ServerProcess]:
    server = start_kcr("serve", "ollama", "--ollama-host", fake_ollama.url, "--model", CHAT_MODEL,
                       env=facade_only_env)  # fmt: skip
    yield server
    server.stop()


def test_the_hook_makes_the_predictive_stack_look_uninstalled(facade_only_env: dict[str, str]) -> None:
    assert missing_in_child(facade_only_env, *PREDICTIVE_STACK, "pydantic") == list(PREDICTIVE_STACK)


def test_facade_serves_the_openai_sdk_without_the_predictive_stack(facade: ServerProcess) -> None:
    client = openai.OpenAI(base_url=f"{facade.url}/v1", api_key="unused", max_retries=0, timeout=30)
    assert [m.id for m in client.models.list().data] == [CHAT_MODEL]
    messages = [{"role": "user", "content": "Say hi"}]
    reply = client.chat.completions.create(model=CHAT_MODEL, messages=messages)  # type: ignore[arg-type]
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(model=CHAT_MODEL, messages=messages, stream=True)  # type: ignore[arg-type]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == reply.choices[0].message.content


def test_probes_and_metrics_without_the_predictive_stack(facade: ServerProcess) -> None:
    for path in ("/", "/v2/health/live", "/v2/health/ready", "/v1/models"):
        assert httpx.get(facade.url + path).status_code == 200, path
    metrics = httpx.get(facade.url + "/metrics")
    assert metrics.status_code == 200 and "kcr_requests_total" in metrics.text
    assert "Traceback" not in facade.log(), facade.log()
