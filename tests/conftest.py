"""Shared fixtures: demo models trained once per session, and real server processes on free ports."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.procs import ServerProcess, start_kcr, start_kserve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "images"))


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/<name>/model.joblib`` for iris, iris-rf, iris-labels, iris-pipeline."""
    import joblib
    from train_demo_models import build_models

    root = tmp_path_factory.mktemp("models")
    for name, model in build_models().items():
        (root / name).mkdir()
        joblib.dump(model, root / name / "model.joblib")
    return root


@pytest.fixture(scope="session")
def kcr_factory() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def factory(*args: str, env: dict[str, str] | None = None, **kw: object) -> ServerProcess:
        proc = start_kcr(*args, env=env, **kw)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def kserve_factory() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def factory(
        model_dir: Path, name: str, env: dict[str, str] | None = None, grpc: bool = False
    ) -> ServerProcess:
        proc = start_kserve(model_dir, name, env=env, grpc=grpc)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def iris_server(kcr_factory: Callable[..., ServerProcess], model_root: Path) -> ServerProcess:
    """Our server with every demo model (multi-model directory)."""
    return kcr_factory("serve", "sklearn", "--model-dir", str(model_root), grpc=True)


def pytest_report_header() -> str:
    return f"CI={os.environ.get('CI', '')}"
