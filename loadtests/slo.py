"""Read locust's ``--csv`` output and judge it against SLO thresholds (no locust import: plain csv)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Request type of the custom entries the chat suite fires (TTFT, tokens/s): not HTTP requests.
METRIC = "METRIC"
TTFT_NAME = "chat TTFT"
TOKENS_PER_S_NAME = "chat tokens/s"
ITL_NAME = "chat ITL"
CHAT_NAME = "chat stream"
AGGREGATED = "Aggregated"

#: Stats row each suite produces.
SUITE_ROWS = {"v1": "v1 predict", "v2": "v2 infer", "chat": CHAT_NAME}


@dataclass(frozen=True)
class Row:
    """One line of ``<prefix>_stats.csv``."""

    type: str
    name: str
    requests: int
    failures: int
    rps: float
    avg: float
    min: float
    max: float
    median: float
    p95: float | None
    p99: float | None
    avg_size: float

    @property
    def is_metric(self) -> bool:
        return self.type == METRIC

    @property
    def is_http(self) -> bool:
        return not self.is_metric and self.name != AGGREGATED


def _num(value: str | None) -> float | None:
    if value is None or value.strip() in ("", "N/A"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def read_stats(path: Path) -> list[Row]:
    rows: list[Row] = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            rows.append(
                Row(
                    type=r.get("Type") or "",
                    name=r.get("Name") or "",
                    requests=int(_num(r.get("Request Count")) or 0),
                    failures=int(_num(r.get("Failure Count")) or 0),
                    rps=_num(r.get("Requests/s")) or 0.0,
                    avg=_num(r.get("Average Response Time")) or 0.0,
                    min=_num(r.get("Min Response Time")) or 0.0,
                    max=_num(r.get("Max Response Time")) or 0.0,
                    median=_num(r.get("50%")) or 0.0,
                    p95=_num(r.get("95%")),
                    p99=_num(r.get("99%")),
                    avg_size=_num(r.get("Average Content Size")) or 0.0,
                )
            )
    return rows


def read_exception_count(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open(newline="") as f:
        return sum(int(_num(r.get("Count")) or 0) for r in csv.DictReader(f))


@dataclass(frozen=True)
class Thresholds:
    max_failure_ratio: float | None = 0.01
    #: p95 of every HTTP row except the chat stream (whose length is mostly generation time).
    p95_ms: float | None = None
    chat_p95_ms: float | None = None
    ttft_p95_ms: float | None = None
    #: median per-request output rate (completion tokens / time to last token).
    min_tokens_per_s: float | None = None
    #: all HTTP requests per second together.
    min_rps: float | None = None
    #: every expected row must have at least this many requests (a run that did nothing must not pass).
    min_requests: int = 1
    max_exceptions: int | None = 0


@dataclass
class Check:
    name: str
    op: str
    target: float
    actual: float | None
    passed: bool
    note: str = ""


@dataclass
class Verdict:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def add(self, name: str, op: str, target: float, actual: float | None, note: str = "") -> None:
        if actual is None or math.isnan(actual):
            ok = False
            note = note or "no data"
        elif op == "<=":
            ok = actual <= target
        else:
            ok = actual >= target
        self.checks.append(Check(name, op, target, actual, ok, note))

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def evaluate(
    rows: Iterable[Row], thresholds: Thresholds, expected: Iterable[str] = (), exceptions: int = 0
) -> Verdict:
    """``expected``: stats row names that must be present (e.g. ``"v1 predict"``)."""
    rows = list(rows)
    by_name = {r.name: r for r in rows}
    http = [r for r in rows if r.is_http]
    v = Verdict()
    for name in expected:
        row = by_name.get(name)
        v.add(f"requests: {name}", ">=", thresholds.min_requests, row.requests if row else None)
    total = sum(r.requests for r in http)
    fails = sum(r.failures for r in http)
    if thresholds.max_failure_ratio is not None:
        ratio = fails / total if total else None
        v.add("failure ratio (all HTTP)", "<=", thresholds.max_failure_ratio, ratio, f"{fails}/{total}")
    if thresholds.max_exceptions is not None:
        v.add("task exceptions", "<=", thresholds.max_exceptions, exceptions)
    if thresholds.p95_ms is not None:
        kserve_rows = [r for r in http if r.name != CHAT_NAME]
        if not kserve_rows:
            v.add("p95 ms", "<=", thresholds.p95_ms, None, "no non-chat requests")
        for r in kserve_rows:
            v.add(f"p95 ms: {r.name}", "<=", thresholds.p95_ms, r.p95)
    if thresholds.chat_p95_ms is not None:
        row = by_name.get(CHAT_NAME)
        v.add(f"p95 ms: {CHAT_NAME}", "<=", thresholds.chat_p95_ms, row.p95 if row else None)
    if thresholds.ttft_p95_ms is not None:
        row = by_name.get(TTFT_NAME)
        v.add("p95 ms: chat TTFT", "<=", thresholds.ttft_p95_ms, row.p95 if row and row.requests else None)
    if thresholds.min_tokens_per_s is not None:
        row = by_name.get(TOKENS_PER_S_NAME)
        median = row.median if row and row.requests else None
        v.add("median chat tokens/s", ">=", thresholds.min_tokens_per_s, median)
    if thresholds.min_rps is not None:
        v.add("req/s (all HTTP)", ">=", thresholds.min_rps, sum(r.rps for r in http) if http else None)
    return v


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == int(x) and abs(x) < 1e12:
        return str(int(x))
    return f"{x:.4g}" if abs(x) < 1 else f"{x:.1f}"


def _table(header: list[str], lines: list[list[str]], right: set[int]) -> str:
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [fmt(header), "  ".join("-" * w for w in widths), *(fmt(line) for line in lines)]
    return "\n".join(line.rstrip() for line in out)


def stats_table(rows: Iterable[Row]) -> str:
    header = ["type", "name", "reqs", "fails", "req/s", "avg", "p50", "p95", "p99", "max"]
    lines = []
    for r in rows:
        if r.name == AGGREGATED:
            continue
        unit = "tok/s" if r.name == TOKENS_PER_S_NAME else "ms"
        lines.append(
            [
                r.type,
                f"{r.name} ({unit})",
                str(r.requests),
                str(r.failures),
                "-" if r.is_metric else f"{r.rps:.1f}",
                f"{r.avg:.1f}",
                _fmt(r.median),
                _fmt(r.p95),
                _fmt(r.p99),
                f"{r.max:.1f}",
            ]
        )
    return _table(header, lines, right=set(range(2, 10)))


def verdict_table(verdict: Verdict) -> str:
    header = ["SLO", "target", "actual", "result", "note"]
    lines = [
        [c.name, f"{c.op} {_fmt(c.target)}", _fmt(c.actual), "PASS" if c.passed else "FAIL", c.note]
        for c in verdict.checks
    ]
    n_ok = sum(c.passed for c in verdict.checks)
    summary = (
        f"SLO RESULT: {'PASS' if verdict.passed else 'FAIL'} ({n_ok}/{len(verdict.checks)} checks passed)"
    )
    return _table(header, lines, right={2}) + "\n" + summary
