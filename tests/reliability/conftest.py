"""Fixtures for the reliability suite: in-process apps for the fuzzers, a scripted fake Ollama."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.settings import Settings
from tests.openai.fake_ollama import FakeOllama
from tests.reliability.shapes import FUZZ_COUNTS

CHAT_MODEL = "smollm2:135m"
EMBED_MODEL = "embed:1"


def sklearn_app(model_root: Path, **overrides: Any) -> Any:
    """The sklearn app over the demo models, built as the CLI builds it (models loaded by the
    lifespan)."""
    from runtimes import sklearn

    settings = Settings(model_dir=str(model_root), access_log=False, **overrides)
    return create_app(settings, sklearn.build(settings, argparse.Namespace()))


def ollama_app(ollama_url: str, *extra: str, environ: dict[str, str] | None = None) -> Any:
    """The OpenAI facade in front of ``ollama_url``, built as the CLI builds it."""
    from server.cli import parse

    argv = ["serve", "ollama", "--ollama-host", ollama_url, "--model", CHAT_MODEL,
            "--embedding-model", EMBED_MODEL, "--no-access-log", *extra]  # fmt: skip
    settings, options, runtime = parse(argv, environ or {})
    return create_app(settings, runtime.build(settings, options))


@pytest.fixture(scope="module")
def fake_ollama() -> Iterator[FakeOllama]:
    server = FakeOllama(models=(CHAT_MODEL, EMBED_MODEL)).start()
    yield server
    server.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FUZZ_COUNTS:
        total = sum(FUZZ_COUNTS.values())
        terminalreporter.write_sep("-", f"reliability fuzz: {total} generated requests")
        for name, count in sorted(FUZZ_COUNTS.items()):
            terminalreporter.write_line(f"  {count:6d}  {name}")
