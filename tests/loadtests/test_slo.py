"""SLO evaluation and runner argument handling, without running locust."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pytest

from loadtests import run, slo

COLUMNS = [
    "Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
    "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s",
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
]  # fmt: skip


def write_stats(path: Path, rows: list[tuple[str, str, int, int, float, float]]) -> Path:
    """rows: (type, name, requests, failures, p50, p95)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for typ, name, n, fails, p50, p95 in rows:
            na = n == 0
            pct = ["N/A"] * 11 if na else [p50, p50, p50, p50, p95, p95, p95, p95, p95, p95, p95]
            w.writerow([typ, name, n, fails, p50, p50, 0, p95, 10, n / 10, fails / 10, *pct])
        total = sum(r[2] for r in rows)
        w.writerow(
            ["", "Aggregated", total, sum(r[3] for r in rows), 1, 1, 0, 1, 10, total / 10, 0, *[1] * 11]
        )
    return path


def test_evaluate_pass_and_fail(tmp_path: Path) -> None:
    rows = slo.read_stats(
        write_stats(
            tmp_path / "s.csv",
            [
                ("POST", "v1 predict", 1000, 5, 3, 9),
                ("POST", "chat stream", 10, 0, 900, 2000),
                ("METRIC", "chat TTFT", 10, 0, 150, 300),
                ("METRIC", "chat tokens/s", 10, 0, 60, 80),
            ],
        )
    )
    ok = slo.evaluate(
        rows,
        slo.Thresholds(max_failure_ratio=0.01, p95_ms=10, ttft_p95_ms=300, min_tokens_per_s=50, min_rps=50),
        expected=["v1 predict", "chat stream"],
    )
    assert ok.passed, slo.verdict_table(ok)
    names = [c.name for c in ok.checks]
    assert "p95 ms: chat stream" not in names  # --p95-ms is for non-chat endpoints only
    bad = slo.evaluate(
        rows,
        slo.Thresholds(
            max_failure_ratio=0.001, p95_ms=5, chat_p95_ms=1000, ttft_p95_ms=100, min_tokens_per_s=70
        ),
        expected=["v1 predict", "v2 infer"],
        exceptions=2,
    )
    failed = {c.name for c in bad.checks if not c.passed}
    assert failed == {
        "requests: v2 infer",
        "failure ratio (all HTTP)",
        "task exceptions",
        "p95 ms: v1 predict",
        "p95 ms: chat stream",
        "p95 ms: chat TTFT",
        "median chat tokens/s",
    }
    table = slo.verdict_table(bad)
    assert "SLO RESULT: FAIL" in table and "no data" in table


def test_no_requests_is_not_a_pass(tmp_path: Path) -> None:
    rows = slo.read_stats(write_stats(tmp_path / "s.csv", [("POST", "v1 predict", 0, 0, 0, 0)]))
    verdict = slo.evaluate(rows, slo.Thresholds(p95_ms=10), expected=["v1 predict"])
    assert not verdict.passed


def test_parsers() -> None:
    assert (
        run.parse_duration("15s") == 15
        and run.parse_duration("1h2m3s") == 3723
        and run.parse_duration("20") == 20
    )
    assert run.parse_mix("v1=5,v2=4,chat=1") == {"v1": 5, "v2": 4, "chat": 1}
    assert run.parse_suites("mixed") == ["v1", "v2", "chat"] and run.parse_suites("v2,chat") == ["v2", "chat"]
    for bad in ("x", ""):
        with pytest.raises(Exception):  # noqa: B017 - argparse type errors
            run.parse_suites(bad)
    with pytest.raises(SystemExit):
        run.build_parser().parse_args(["-u", "51"])  # load stays bounded


def test_locust_command_keeps_api_key_off_the_command_line(tmp_path: Path) -> None:
    args = run.build_parser().parse_args(["--suite", "mixed", "--mix", "v1=3,v2=0,chat=1", "--api-key", "k"])
    args.locust_args = []
    cmd, env = run.locust_command(args, tmp_path / "p")
    assert "k" not in cmd and env["KCR_API_KEY"] == "k"
    assert cmd[-2:] == ["V1PredictUser", "ChatUser"] and env["KCR_LOAD_V1_WEIGHT"] == "3"


def test_metric_names_match_the_locustfile() -> None:
    """The locustfile cannot be imported here (locust gevent-patches on import): compare its constants."""
    tree = ast.parse(Path(run.LOCUSTFILE).read_text())
    consts = {
        t.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    for name in ("METRIC", "TTFT_NAME", "TOKENS_PER_S_NAME", "ITL_NAME", "CHAT_NAME"):
        assert consts[name] == getattr(slo, name)
    assert set(run.USER_CLASSES.values()) <= {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
