"""The CLI accepts KServe's spellings and environment, and ignores unknown flags with a warning."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from server.cli import parse
from server.settings import Settings
from tests.procs import ROOT


def test_kserve_sklearnserver_args() -> None:
    argv = ["--model_name=iris", "--model_dir=/mnt/models", "--http_port=8080", "--workers=1",
            "--enable_grpc=false", "--timeout-keep-alive=70"]  # fmt: skip
    settings, _, runtime = parse(argv, {})
    assert runtime.__name__ == "runtimes.sklearn"
    assert (settings.model_name, settings.model_dir, settings.http_port) == ("iris", "/mnt/models", 8080)
    assert settings.workers == 1 and settings.timeout_keep_alive == 70


def test_defaults_match_kserve() -> None:
    settings, _, _ = parse(["serve", "sklearn"], {})
    assert settings.model_dir == "/mnt/models"
    assert settings.http_port == 8080
    assert settings.host == "0.0.0.0"
    assert settings.timeout_keep_alive == 65
    assert settings.graceful_timeout == 30


def test_unknown_flags_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        parse(["serve", "sklearn", "--predictor_host", "x", "--frobnicate"], {})
    assert "ignoring unknown arguments: --predictor_host x --frobnicate" in caplog.text


def test_environment_then_cli() -> None:
    env = {"KCR_HTTP_PORT": "9000", "KCR_API_KEYS": "a, b", "KCR_ACCESS_LOG": "false", "KCR_MODEL_DIR": "/m"}
    settings, _, _ = parse(["--http-port", "9100"], env)
    assert settings.http_port == 9100  # command line wins
    assert settings.api_keys == ("a", "b")
    assert settings.access_log is False
    assert settings.model_dir == "/m"


def test_runtime_from_env() -> None:
    _, _, runtime = parse([], {"KCR_RUNTIME": "ollama"})
    assert runtime.__name__ == "runtimes.ollama"


def test_settings_validate() -> None:
    with pytest.raises(ValueError):
        Settings(http_port=70000)


def test_batching_flags() -> None:
    argv = ["--max-batch-size", "8", "--max-batch-wait-ms", "2.5", "--inline-predict-ms", "5"]
    settings, _, _ = parse(argv, {"KCR_INLINE_PREDICT_MS": "50"})
    assert (settings.max_batch_size, settings.max_batch_wait_ms, settings.inline_predict_ms) == (8, 2.5, 5.0)
    settings, _, _ = parse([], {"KCR_INLINE_PREDICT_MS": "50"})
    assert settings.inline_predict_ms == 50.0


def test_serving_imports_uvicorn_without_its_command_line() -> None:
    # click and uvicorn.main stay out (~1.7 MB); uvicorn.run, re-exported from it, still works.
    script = (
        "import sys; from server.cli import _import_uvicorn; _import_uvicorn(); import uvicorn; "
        "print('click' in sys.modules, callable(uvicorn.run), 'click' in sys.modules, "
        "uvicorn.server.Server.__name__)"
    )
    # The second check reads uvicorn.run without calling it: still deferred.
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "False", "Server"]
