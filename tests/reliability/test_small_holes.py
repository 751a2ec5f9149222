"""The smaller holes: settings that would silently weaken the server are refused at start-up, the
pinned model is the one unpickled, client text cannot forge log lines, ambiguous credentials are
refused, and error messages do not echo whole inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest

from tests.procs import ROOT, ServerProcess, start_kcr


def _start(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", **env})  # fmt: skip


@pytest.mark.parametrize("keys", ["", " ", ","])
def test_blank_api_keys_refuse_to_start(model_root: Path, keys: str) -> None:
    result = _start("serve", "sklearn", "--model-dir", str(model_root / "iris"), env={"KCR_API_KEYS": keys})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2
    assert len(lines) == 1 and "KCR_API_KEYS is set but holds no key" in lines[0]


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "x\x01"])
def test_an_unreachable_model_name_refuses_to_start(model_root: Path, name: str) -> None:
    result = _start("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", name, env={})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2
    assert len(lines) == 1 and "cannot be reached in a URL" in lines[0]


def test_the_pinned_bytes_are_the_bytes_unpickled(model_root: Path, tmp_path: Path, monkeypatch: Any) -> None:
    """The file is swapped for another model right after it is read for hashing: the model served
    is still the one whose SHA-256 was pinned."""
    import asyncio
    import hashlib

    from runtimes.sklearn import SklearnModel

    path = tmp_path / "model.joblib"
    path.write_bytes((model_root / "iris" / "model.joblib").read_bytes())
    pinned = hashlib.sha256(path.read_bytes()).hexdigest()
    other = (model_root / "iris-rf" / "model.joblib").read_bytes()
    real_read = Path.read_bytes

    def read_then_swap(self: Path) -> bytes:
        data = real_read(self)
        if self == path:
            self.write_bytes(other)  # the attacker's swap, between hashing and loading
        return data

    monkeypatch.setattr(Path, "read_bytes", read_then_swap)
    model = SklearnModel("iris", path, sha256=pinned)
    asyncio.run(model.load())
    assert type(model._estimator).__name__ == type(joblib.load(model_root / "iris" / "model.joblib")).__name__
    assert type(model._estimator).__name__ != "RandomForestClassifier"


@pytest.fixture(scope="module")
def logged(model_root: Path) -> Any:
    proc = start_kcr("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris",
                     env={"KCR_API_KEYS": "k-1"})  # fmt: skip
    yield proc
    proc.stop()


def test_client_text_cannot_forge_log_lines(logged: ServerProcess) -> None:
    forged = "/v1/models/x%0A2026-01-01 00:00:00,000 INFO kcr.access: 6.6.6.6 %22GET /admin%22 200"
    httpx.get(logged.url + forged, timeout=5)
    httpx.get(logged.url + "/v2/health/live", timeout=5)  # flushes the batch
    log = logged.log()
    assert "6.6.6.6" in log  # it was logged...
    assert not any(line.startswith("2026-01-01") for line in log.splitlines())  # ...on its own line
    assert "\\n2026-01-01" in log and '\\"GET /admin\\"' in log


def test_two_authorization_headers_are_refused(logged: ServerProcess) -> None:
    body = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]}).encode()
    headers = [
        ("authorization", "Bearer k-1"),
        ("authorization", "Bearer other"),
        ("content-type", "application/json"),
    ]
    r = httpx.post(logged.url + "/v1/models/iris:predict", content=body, headers=headers, timeout=5)
    assert r.status_code == 400 and r.json() == {
        "error": "Send one Authorization header; this request has 2."
    }
    one = httpx.post(logged.url + "/v1/models/iris:predict", content=body, headers=headers[:1], timeout=5)
    assert one.status_code == 200


def test_error_messages_do_not_echo_whole_inputs(logged: ServerProcess) -> None:
    huge = "X" * (5 << 20)
    body = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": huge, "data": [1]}]})
    r = httpx.post(logged.url + "/v2/models/iris/infer", content=body,
                   headers={"authorization": "Bearer k-1"}, timeout=30)  # fmt: skip
    assert r.status_code == 400
    assert len(r.content) < 2048 and "more characters" in r.json()["error"]
