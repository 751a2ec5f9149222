"""``--workers N`` (KServe's flag): every worker process loads the model and answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.procs import ServerProcess


def test_two_workers(kcr_factory: Callable[..., ServerProcess], model_root: Path) -> None:
    server = kcr_factory("--model_dir", str(model_root / "iris"), "--model_name", "iris", "--workers", "2")
    with httpx.Client(base_url=server.url) as client:
        for _ in range(8):
            response = client.post("/v1/models/iris:predict", json={"instances": [[6.8, 2.8, 4.8, 1.4]]})
            assert response.json() == {"predictions": [1]}
    assert server.log().count("Started server process") == 2
