"""Soak (slow target: ``make soak``, 10 minutes by default): mixed v1/v2/chat traffic from locust
against a real sklearn server and the OpenAI facade over the llama-cpp stand-in.

Asserts: failure ratio 0; p99 stable (the median of per-interval p99s in the second half within 2x
of the first half, for each server's traffic); RSS growth under 10% after warm-up for both servers.
``KCR_SOAK_SECONDS`` shortens it; the figures are printed and written to ``KCR_SOAK_REPORT``.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.procs import ROOT, ServerProcess, start_kcr

SECONDS = int(os.environ.get("KCR_SOAK_SECONDS", "600"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(SECONDS + 600)]
WARMUP = min(60, SECONDS // 5)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_soak(model_root: Path, tmp_path: Path) -> None:
    # Only look locust up: importing it here would gevent-patch the test process.
    if importlib.util.find_spec("locust") is None or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("the soak needs locust and llama-cpp-python")
    from tests.ollama_standin.process import start_standin

    standin = start_standin(preload=True)
    sklearn = start_kcr("serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris",
                        "--no-access-log")  # fmt: skip
    facade: ServerProcess = start_kcr(
        "serve", "ollama", "--ollama-host", standin.url, "--model", "smollm2:135m",
        "--max-concurrency", "1", "--max-queue", "16", "--no-access-log",
    )  # fmt: skip
    samples: dict[str, list[tuple[float, float]]] = {"sklearn": [], "facade": []}
    stop = threading.Event()

    def sample() -> None:
        start = time.monotonic()
        while not stop.wait(5):
            for name, server in (("sklearn", sklearn), ("facade", facade)):
                samples[name].append((time.monotonic() - start, _rss_mb(server.proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        sampler.start()
        cmd = [
            sys.executable, "-m", "loadtests.run", "--host", sklearn.url, "--suite", "mixed",
            "--mix", "v1=5,v2=4,chat=1", "-u", "12", "-r", "4", "-t", f"{SECONDS}s", "--max-tokens", "8",
            "--wait-ms", "20", "--chat-path", facade.url + "/v1/chat/completions",
            "--reports-dir", str(tmp_path), "--name", "soak", "--max-failure-ratio", "0",
            "--", "--csv-full-history",
        ]  # fmt: skip
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 300)
        print(result.stdout[-4000:])
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    finally:
        stop.set()
        sampler.join(10)
        for proc in (sklearn, facade):
            proc.stop()
        standin.stop()

    history = list(csv.DictReader((tmp_path / "soak_stats_history.csv").open()))
    report: dict[str, object] = {"seconds": SECONDS}
    for endpoint_prefix in ("v1", "v2", "chat stream"):
        rows = [
            r for r in history if r["Name"].startswith(endpoint_prefix) and r["99%"] not in ("N/A", "0", "")
        ]
        assert rows, f"no history rows for {endpoint_prefix}"
        times = [int(r["Timestamp"]) for r in rows]
        middle = (min(times) + max(times)) / 2
        first = [
            float(r["99%"])
            for r in rows
            if int(r["Timestamp"]) < middle and int(r["Timestamp"]) > min(times) + WARMUP
        ]
        second = [float(r["99%"]) for r in rows if int(r["Timestamp"]) >= middle]
        p99_first, p99_second = statistics.median(first or second), statistics.median(second)
        report[f"p99_ms_{endpoint_prefix}"] = {"first_half": p99_first, "second_half": p99_second}
        assert p99_second <= 2 * max(p99_first, 5), (endpoint_prefix, p99_first, p99_second)
    for name, points in samples.items():
        warm = [rss for t, rss in points if t >= WARMUP]
        assert len(warm) >= 2, f"too few RSS samples for {name}"
        growth = (warm[-1] - warm[0]) / warm[0]
        report[f"rss_mb_{name}"] = {"after_warmup": round(warm[0], 1), "end": round(warm[-1], 1),
                                    "growth_pct": round(growth * 100, 2)}  # fmt: skip
        assert growth < 0.10, (name, warm[0], warm[-1])
    summary = json.loads((tmp_path / "soak_slo.json").read_text())
    report["slo"] = summary
    print(json.dumps(report, indent=1))
    target = os.environ.get("KCR_SOAK_REPORT")
    if target:
        Path(target).write_text(json.dumps(report, indent=1))
