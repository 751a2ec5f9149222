"""API keys on every runtime and route family; probes stay open; no secret or prompt content in logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.web import auth
from tests.openai.fake_ollama import FakeOllama
from tests.procs import ServerProcess, start_kcr
from tests.reliability.conftest import CHAT_MODEL
from tests.reliability.shapes import kserve_error_problem, openai_error_problem

KEYS = "first-key-4f1c9a,second-key-77e2b0"
KEY = "second-key-77e2b0"
WRONG = "wrong-key-0d3e55"
CANARY = "CANARY-prompt-5e8d21"
OPEN = ["/", "/v2/health/live", "/v2/health/ready", "/metrics"]


@pytest.fixture(scope="module")
def sklearn_keyed(model_root: Path) -> Iterator[ServerProcess]:
    server = start_kcr("serve", "sklearn", "--model-dir", str(model_root), env={"KCR_API_KEYS": KEYS})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ollama_keyed(fake_ollama: FakeOllama) -> Iterator[ServerProcess]:
    server = start_kcr(
        "serve", "ollama", "--ollama-host", fake_ollama.url, "--model", CHAT_MODEL, env={"KCR_API_KEYS": KEYS}
    )
    yield server
    server.stop()


def _auth(value: str | None) -> dict[str, str]:
    return {} if value is None else {"authorization": value}


SKLEARN_CALLS = [
    ("/v1/models/iris:predict", {"instances": [[6.8, 2.8, 4.8, 1.4]]}),
    ("/v2/models/iris/infer", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                           "data": [6.8, 2.8, 4.8, 1.4]}]}),
]  # fmt: skip
BAD_AUTH = [None, f"Bearer {WRONG}", KEY, f"Basic {KEY}", "Bearer", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}"]


def test_sklearn_routes_need_a_key(sklearn_keyed: ServerProcess) -> None:
    for path, body in SKLEARN_CALLS:
        for header in BAD_AUTH:
            r = httpx.post(sklearn_keyed.url + path, json=body, headers=_auth(header))
            assert r.status_code == 401, (path, header, r.text)
            assert kserve_error_problem(r.json()) is None
        for header in (f"Bearer {KEY}", f"bearer {KEY}", f"Bearer {KEYS.split(',')[0]}"):
            assert httpx.post(sklearn_keyed.url + path, json=body, headers=_auth(header)).status_code == 200
    for path in OPEN:
        assert httpx.get(sklearn_keyed.url + path).status_code == 200, path
    assert sklearn_keyed.proc.poll() is None


def test_openai_routes_need_a_key(ollama_keyed: ServerProcess) -> None:
    chat = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    for prefix in ("/v1", "/openai/v1"):
        for method, path, body in (("POST", "/chat/completions", chat), ("GET", "/models", None)):
            for header in BAD_AUTH:
                r = httpx.request(method, ollama_keyed.url + prefix + path, json=body, headers=_auth(header))
                assert r.status_code == 401, (prefix + path, header, r.text)
                assert openai_error_problem(r.json()) is None
                assert r.json()["error"]["code"] == "invalid_api_key"
            r = httpx.request(
                method, ollama_keyed.url + prefix + path, json=body, headers=_auth(f"Bearer {KEY}")
            )
            assert r.status_code == 200
    for path in OPEN:
        assert httpx.get(ollama_keyed.url + path).status_code == 200, path


def test_keys_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every configured key is compared with ``hmac.compare_digest``, whichever one matches (so the
    time taken does not tell which key nearly matched)."""
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    keys = ("k1-aaaa", "k2-bbbb", "k3-cccc")
    for presented in ("k1-aaaa", "k3-cccc", "nope", "k2-bbbX"):
        calls.clear()
        auth.key_matches(presented, keys)
        assert [b for _, b in calls] == [k.encode() for k in keys]


def test_no_secret_or_prompt_in_logs(sklearn_keyed: ServerProcess, ollama_keyed: ServerProcess) -> None:
    """At the default log level (info, access log on), after requests carrying keys, wrong keys,
    prompts and bad input that echo data in the client's error message."""
    secrets = [KEY, WRONG, CANARY, KEYS.split(",")[0]]
    for header in (f"Bearer {KEY}", f"Bearer {WRONG}"):
        httpx.post(sklearn_keyed.url + "/v1/models/iris:predict", headers=_auth(header),
                   json={"instances": [[CANARY, 1, 2, 3]]})  # fmt: skip
        httpx.post(sklearn_keyed.url + f"/v1/models/iris:predict?api_key={KEY}", headers=_auth(header),
                   content=b"{" + CANARY.encode())  # fmt: skip
        for stream in (False, True):
            body = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": CANARY}], "stream": stream}
            httpx.post(ollama_keyed.url + "/v1/chat/completions", json=body, headers=_auth(header))
        bad = {"model": CHAT_MODEL, "messages": [{"role": CANARY, "content": CANARY}]}
        httpx.post(ollama_keyed.url + "/v1/chat/completions", json=bad, headers=_auth(header))
        httpx.post(ollama_keyed.url + "/v1/embeddings", headers=_auth(header),
                   content=json.dumps({"model": CANARY, "input": CANARY}))  # fmt: skip
    for server in (sklearn_keyed, ollama_keyed):
        log = server.log()
        assert '"POST /v1/' in log  # the access log is on
        for secret in secrets:
            assert secret not in log, f"{secret!r} found in the log of {server.argv}"
