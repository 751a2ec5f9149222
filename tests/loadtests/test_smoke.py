"""Short headless locust smokes (127.0.0.1 only, few users, seconds long) via ``python -m loadtests.run``.

* sklearn server (with an API key) under v1 + v2 load: loose SLOs pass, reports are written and consistent;
  an impossible p95 makes the runner exit 1.
* a stdlib stub "ingress": Host header and Bearer key reach the server, TTFT is measured from the stream.
* the OpenAI facade in front of the llama.cpp stand-in: TTFT and tokens/s are recorded (skipped without
  llama-cpp).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loadtests.stub_ingress import FIRST_TOKEN_DELAY, StubIngress
from tests.procs import ROOT, ServerProcess, start_kcr

# find_spec, not importorskip: importing locust would gevent-patch the pytest process.
if importlib.util.find_spec("locust") is None:
    pytest.skip("locust is not installed (pip install -e '.[test]')", allow_module_level=True)

pytestmark = pytest.mark.timeout(180)

API_KEY = "lt-secret"
HOST_HEADER = "sklearn-iris.default.example.com"


def run_loadtest(
    reports: Path, name: str, *args: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "loadtests.run", "--reports-dir", str(reports), "--name", name, *args]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    print(proc.stdout)  # the pass/fail table, visible with -s / on failure
    print(proc.stderr[-3000:], file=sys.stderr)
    return proc


def stats(reports: Path, name: str) -> dict[str, dict[str, str]]:
    with (reports / f"{name}_stats.csv").open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def slo(reports: Path, name: str) -> dict:
    return json.loads((reports / f"{name}_slo.json").read_text())


@pytest.fixture(scope="module")
def sklearn_server(model_root: Path) -> Iterator[ServerProcess]:
    server = start_kcr(
        "serve", "sklearn", "--model-dir", str(model_root / "iris"), "--model-name", "iris",
        "--no-access-log", env={"KCR_API_KEYS": API_KEY},
    )  # fmt: skip
    yield server
    server.stop()


def test_kserve_smoke_passes_and_writes_reports(sklearn_server: ServerProcess, tmp_path: Path) -> None:
    proc = run_loadtest(
        tmp_path, "kserve",
        "--host", sklearn_server.url, "--api-key", API_KEY, "--model-name", "iris", "--suite", "v1,v2",
        "-u", "5", "-r", "5", "-t", "10s",
        "--max-failure-ratio", "0", "--p95-ms", "1000", "--min-rps", "5",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "SLO RESULT: PASS" in proc.stdout
    rows = stats(tmp_path, "kserve")
    for name in ("v1 predict", "v2 infer"):
        assert int(rows[name]["Request Count"]) > 0, rows[name]
        assert int(rows[name]["Failure Count"]) == 0, rows[name]
    assert int(rows["Aggregated"]["Request Count"]) == sum(
        int(rows[n]["Request Count"]) for n in ("v1 predict", "v2 infer")
    )
    html = (tmp_path / "kserve.html").read_text()
    assert "v1 predict" in html and "v2 infer" in html
    summary = slo(tmp_path, "kserve")
    assert summary["passed"] is True and summary["locust_exit_code"] == 0


def test_impossible_slo_fails(sklearn_server: ServerProcess, tmp_path: Path) -> None:
    proc = run_loadtest(
        tmp_path, "strict",
        "--host", sklearn_server.url, "--api-key", API_KEY, "--suite", "v1", "-u", "5", "-r", "5", "-t", "3s",
        "--max-failure-ratio", "0", "--p95-ms", "0.001",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    assert "SLO RESULT: FAIL" in proc.stdout
    checks = {c["name"]: c for c in slo(tmp_path, "strict")["checks"]}
    assert checks["p95 ms: v1 predict"]["passed"] is False
    assert checks["failure ratio (all HTTP)"]["passed"] is True  # only the latency SLO was missed


def test_missing_api_key_counts_as_failures(sklearn_server: ServerProcess, tmp_path: Path) -> None:
    proc = run_loadtest(
        tmp_path, "nokey",
        "--host", sklearn_server.url, "--api-key", "", "--suite", "v1", "-u", "2", "-t", "2s",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    checks = {c["name"]: c for c in slo(tmp_path, "nokey")["checks"]}
    assert (
        checks["failure ratio (all HTTP)"]["passed"] is False
        and checks["failure ratio (all HTTP)"]["actual"] == 1
    )


def test_host_header_api_key_and_ttft_through_stub_ingress(tmp_path: Path) -> None:
    with StubIngress() as ingress:
        proc = run_loadtest(
            tmp_path, "mixed",
            "--host", ingress.url, "--host-header", HOST_HEADER, "--api-key", API_KEY,
            "--model-name", "sklearn-iris", "--chat-path", "/openai/v1/chat/completions", "--max-tokens", "4",
            "--suite", "mixed", "--mix", "v1=1,v2=1,chat=1", "-u", "3", "-r", "3", "-t", "3s",
            "--max-failure-ratio", "0", "--ttft-p95-ms", "1000", "--min-tokens-per-s", "1",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert set(ingress.hosts) == {HOST_HEADER}
    assert set(ingress.auths) == {f"Bearer {API_KEY}"}
    assert {p.rsplit("/", 1)[-1] for p in ingress.paths} == {"sklearn-iris:predict", "infer", "completions"}
    rows = stats(tmp_path, "mixed")
    ttft, stream = rows["chat TTFT"], rows["chat stream"]
    assert int(ttft["Request Count"]) > 0 and ttft["Type"] == "METRIC"
    # measured from the stream as it arrives: after the stub's first-token delay, before the stream's end
    assert float(ttft["Average Response Time"]) >= FIRST_TOKEN_DELAY * 1000 * 0.8
    assert float(ttft["Average Response Time"]) < float(stream["Average Response Time"])
    assert float(rows["chat tokens/s"]["Average Content Size"]) == 4  # completion tokens from usage
    assert int(rows["chat ITL"]["Request Count"]) > 0


@pytest.mark.llm
def test_chat_smoke_against_facade_and_standin(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from tests.ollama_standin.process import start_standin

    with start_standin(preload=True) as standin:
        server = start_kcr(
            "serve", "ollama", "--ollama-host", standin.url, "--model", "smollm2:135m", "--no-access-log",
            "--first-token-timeout", "20", "--request-timeout", "60",
        )  # fmt: skip
        try:
            proc = run_loadtest(
                tmp_path, "chat",
                "--host", server.url, "--suite", "chat", "--chat-model", "smollm2:135m", "--max-tokens", "8",
                "-u", "2", "-r", "2", "-t", "8s", "--max-failure-ratio", "0", "--ttft-p95-ms", "15000",
            )  # fmt: skip
        finally:
            server.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = stats(tmp_path, "chat")
    assert int(rows["chat stream"]["Request Count"]) > 0 and int(rows["chat stream"]["Failure Count"]) == 0
    assert int(rows["chat TTFT"]["Request Count"]) > 0 and float(rows["chat TTFT"]["95%"]) > 0
    assert int(rows["chat tokens/s"]["Request Count"]) > 0 and int(rows["chat ITL"]["Request Count"]) > 0
