"""No single request holds the event loop for more than 50 ms or takes more memory than ten times
its body plus 16 MB (and what it takes is returned): measured on a real sklearn server with a
liveness prober every 10 ms and the process's peak RSS, for the request shapes that broke it.
docs/operations.md lists the figures.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.procs import ServerProcess, start_kcr
from tests.reliability.probe import Prober, peak_mb, reset_peak, rss_mb

FIGURES: dict[str, str] = {}
MAX_STALL_MS = 50


@pytest.fixture(scope="module")
def server(model_root: Path) -> Iterator[ServerProcess]:
    proc = start_kcr("serve", "sklearn", "--model-dir", str(model_root), "--no-access-log")
    yield proc
    proc.stop()


def _v1_records(n: int) -> bytes:
    return json.dumps({"instances": [{"a": [1.0], "b": [2.0], "c": [3.0], "d": [4.0]}] * n}).encode()


def _v1_long_string(size: int) -> bytes:
    rows = [["x" * (size // 2)]] + [["a"]] * (size // 12)
    return json.dumps({"instances": rows}).encode()


def _v2_bytes(elements: int, claimed: int) -> tuple[bytes, dict[str, str]]:
    raw = b"".join(struct.pack("<I", 2) + b"ab" for _ in range(elements))
    head = json.dumps({"inputs": [{"name": "x", "shape": [claimed], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()  # fmt: skip
    return head + raw, {"inference-header-content-length": str(len(head))}


def _v1_numbers(rows: int) -> bytes:
    return json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]] * rows}).encode()


PIPELINE = "/v1/models/iris-pipeline:predict"
CASES = [
    ("v1 records of short lists, 195 KB", PIPELINE, lambda: (_v1_records(2600), {})),
    ("v1 records of short lists, 1 MB", PIPELINE, lambda: (_v1_records(14000), {})),
    ("v1 one long string among short ones, 1 MB", "/v1/models/iris:predict",
     lambda: (_v1_long_string(1 << 20), {})),
    ("v2 BYTES, 20 MB, shape says 10", "/v2/models/iris/infer", lambda: _v2_bytes(3_300_000, 10)),
    ("v2 BYTES, 20 MB, shape matches: over the string limit", "/v2/models/iris/infer",
     lambda: _v2_bytes(3_300_000, 3_300_000)),
    ("v2 BYTES, 6 MB, a million strings", "/v2/models/iris/infer", lambda: _v2_bytes(1_000_000, 1_000_000)),
    ("v1 numbers, 2 MB", "/v1/models/iris:predict", lambda: (_v1_numbers(70_000), {})),
    ("v1 numbers, 24 MB", "/v1/models/iris:predict", lambda: (_v1_numbers(1_100_000), {})),
]  # fmt: skip


@pytest.mark.parametrize(("name", "path", "make"), CASES, ids=[c[0] for c in CASES])
def test_one_request_neither_stalls_the_loop_nor_bloats_the_process(
    server: ServerProcess, name: str, path: str, make: object
) -> None:
    body, headers = make()  # type: ignore[operator]
    pid = server.proc.pid
    with httpx.Client(base_url=server.url, timeout=120) as client:
        client.post(path, content=body, headers=headers)  # warm: first-use imports are not the point
        before = rss_mb(pid)
        reset_peak(pid)
        with Prober(server.port) as probe:
            response = client.post(path, content=body, headers=headers)
        peak = peak_mb(pid) - before
        # "Returned" once the request is over on the server too (its frames, the access log):
        # a moment later, and after one more small request.
        time.sleep(0.3)
        client.get("/v2/health/live")
        after = rss_mb(pid) - before
    budget = 10 * len(body) / 2**20 + 16
    FIGURES[name] = (
        f"{response.status_code}, loop stall {probe.max_ms:.0f} ms, peak RSS +{peak:.0f} MB "
        f"(budget {budget:.0f}), kept +{after:.0f} MB"
    )
    assert response.status_code < 500, response.text[:300]
    assert probe.failures == 0
    assert probe.max_ms < MAX_STALL_MS, FIGURES[name]
    assert peak < budget, FIGURES[name]
    assert after < 16, FIGURES[name]


def teardown_module() -> None:
    for name, figure in FIGURES.items():
        print(f"  {name}: {figure}")
