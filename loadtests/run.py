"""Headless load-test runner: run locust, keep its CSV + HTML reports, judge SLOs, exit non-zero on a miss.

    python -m loadtests.run --host http://127.0.0.1:8080 --suite v1 -u 10 -r 10 -t 30s --p95-ms 50
    python -m loadtests.run --host http://<ingress> --host-header sklearn-iris.default.example.com \\
        --model-name sklearn-iris --suite v1,v2 -u 20 -t 2m --p95-ms 200
    python -m loadtests.run --host http://127.0.0.1:8080 --suite chat --chat-model smol -u 2 -t 30s \\
        --max-tokens 16 --ttft-p95-ms 2000
    python -m loadtests.run --suite mixed --mix v1=5,v2=4,chat=1 -u 20 -t 30m ...   # soak

Exit codes: 0 all SLOs met, 1 an SLO missed, 2 the run itself failed (locust did not start, no stats).
Locust runs as a child process (it gevent-patches whatever imports it), so this module only reads its files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from loadtests.slo import (
    SUITE_ROWS,
    Thresholds,
    evaluate,
    read_exception_count,
    read_stats,
    stats_table,
    verdict_table,
)

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
MAX_USERS = 50
USER_CLASSES = {"v1": "V1PredictUser", "v2": "V2InferUser", "chat": "ChatUser"}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """Locust's ``-t`` syntax (``20``, ``15s``, ``2m``, ``1h30m``) in seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    m = _DURATION.match(text)
    if not text or not m:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (e.g. 15s, 2m, 1h30m)")
    h, mi, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s


def parse_mix(text: str) -> dict[str, int]:
    weights: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in USER_CLASSES or not value.isdigit():
            raise argparse.ArgumentTypeError(f"bad --mix entry {part!r} (expected v1=N, v2=N, chat=N)")
        weights[key] = int(value)
    return weights


def parse_suites(text: str) -> list[str]:
    suites = list(USER_CLASSES) if text == "mixed" else [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in suites if s not in USER_CLASSES]
    if bad or not suites:
        raise argparse.ArgumentTypeError(f"bad --suite {text!r}: use v1, v2, chat, a comma list, or mixed")
    return suites


def _users(text: str) -> int:
    n = int(text)
    if not 1 <= n <= MAX_USERS:
        raise argparse.ArgumentTypeError(f"users must be 1..{MAX_USERS}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loadtests.run",
        description="Run the kcr locust suites headless, write CSV/HTML reports and check SLOs.",
        epilog="Arguments after '--' go to locust unchanged.",
    )
    env = os.environ.get
    target = p.add_argument_group("target")
    target.add_argument(
        "--host",
        default=env("KCR_LOAD_URL", "http://127.0.0.1:8080"),
        help="base URL: local process, container port or ingress (env KCR_LOAD_URL)",
    )
    target.add_argument(
        "--host-header", default=env("KCR_HOST_HEADER", ""), help="Host header, e.g. <isvc>.<ns>.example.com"
    )
    target.add_argument(
        "--api-key",
        default=env("KCR_API_KEY", ""),
        help="Bearer API key (env KCR_API_KEY; passed to locust by environment, never on its command line)",
    )
    target.add_argument("--model-name", default=env("KCR_LOAD_MODEL", "iris"), help="v1/v2 model name")
    target.add_argument("--chat-model", default=env("KCR_LOAD_CHAT_MODEL", "smollm2:135m"))
    target.add_argument("--chat-path", default=env("KCR_LOAD_CHAT_PATH", "/v1/chat/completions"))

    load = p.add_argument_group("load")
    load.add_argument(
        "--suite",
        type=parse_suites,
        default=parse_suites(env("KCR_LOAD_SUITE", "v1")),
        help="v1, v2, chat, a comma list (v1,v2) or mixed (= v1,v2,chat)",
    )
    load.add_argument(
        "--mix", type=parse_mix, default={}, help="user weights, e.g. v1=5,v2=4,chat=1 (default 1 each)"
    )
    load.add_argument("-u", "--users", type=_users, default=10, help=f"concurrent users (max {MAX_USERS})")
    load.add_argument("-r", "--spawn-rate", type=float, default=10.0, help="users started per second")
    load.add_argument("-t", "--run-time", default="30s", help="duration, locust syntax (15s, 2m, 1h30m)")
    load.add_argument("--batch-size", type=int, default=1, help="rows per v1/v2 request")
    load.add_argument("--max-tokens", type=int, default=16, help="chat max_tokens")
    load.add_argument("--prompt", default="", help="fixed chat prompt (default: a few short ones in turn)")
    load.add_argument("--wait-ms", type=float, default=0.0, help="think time per user between requests")
    load.add_argument(
        "--stop-timeout", type=int, default=0, help="seconds users may finish in-flight requests at the end"
    )

    out = p.add_argument_group("reports")
    out.add_argument("--reports-dir", type=Path, default=Path(env("KCR_LOAD_REPORTS", HERE / "reports")))
    out.add_argument("--name", default="", help="report file prefix (default <suite>-<timestamp>)")
    out.add_argument(
        "--live-stats", action="store_true", help="print locust's periodic stats, not just the end"
    )
    out.add_argument("--locustfile", type=Path, default=LOCUSTFILE)

    slo = p.add_argument_group("SLOs (omit one to skip it)")
    slo.add_argument("--max-failure-ratio", type=float, default=0.01, help="failed/all HTTP (default 0.01)")
    slo.add_argument("--p95-ms", type=float, help="p95 latency of every non-chat endpoint")
    slo.add_argument("--chat-p95-ms", type=float, help="p95 duration of a whole chat stream")
    slo.add_argument("--ttft-p95-ms", type=float, help="p95 time to first token")
    slo.add_argument("--min-tokens-per-s", type=float, help="median per-request output tokens/s")
    slo.add_argument("--min-rps", type=float, help="total HTTP requests per second")
    slo.add_argument("--min-requests", type=int, default=1, help="per selected suite (default 1)")
    slo.add_argument("--max-exceptions", type=int, default=0, help="exceptions raised in locust tasks")
    return p


def locust_command(args: argparse.Namespace, prefix: Path) -> tuple[list[str], dict[str, str]]:
    classes = [USER_CLASSES[s] for s in args.suite if args.mix.get(s, 1) > 0]
    if not classes:
        raise SystemExit("every selected suite has weight 0")
    cmd = [
        sys.executable, "-m", "locust", "-f", str(args.locustfile), "--headless",
        "-u", str(args.users), "-r", str(args.spawn_rate), "-t", args.run_time,
        "--host", args.host, "--csv", str(prefix), "--html", f"{prefix}.html",
        "--stop-timeout", str(args.stop_timeout),
    ]  # fmt: skip
    if not args.live_stats:
        cmd.append("--only-summary")
    cmd += classes + list(args.locust_args)
    child_env = {
        "KCR_LOAD_MODEL": args.model_name,
        "KCR_LOAD_CHAT_MODEL": args.chat_model,
        "KCR_LOAD_CHAT_PATH": args.chat_path,
        "KCR_HOST_HEADER": args.host_header,
        "KCR_API_KEY": args.api_key,
        "KCR_LOAD_BATCH": str(args.batch_size),
        "KCR_LOAD_MAX_TOKENS": str(args.max_tokens),
        "KCR_LOAD_PROMPT": args.prompt,
        "KCR_LOAD_WAIT_MS": str(args.wait_ms),
        "KCR_LOAD_V1_WEIGHT": str(args.mix.get("v1", 1)),
        "KCR_LOAD_V2_WEIGHT": str(args.mix.get("v2", 1)),
        "KCR_LOAD_CHAT_WEIGHT": str(args.mix.get("chat", 1)),
    }
    return cmd, child_env


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    locust_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, locust_args = argv[:i], argv[i + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.locust_args = locust_args
    try:
        run_seconds = parse_duration(args.run_time)
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))

    args.reports_dir.mkdir(parents=True, exist_ok=True)
    name = args.name or f"{'-'.join(args.suite)}-{time.strftime('%Y%m%d-%H%M%S')}"
    prefix = (args.reports_dir / name).resolve()
    cmd, child_env = locust_command(args, prefix)
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in child_env.items() if v and k != "KCR_API_KEY")
    print(f"$ {shown} {shlex.join(cmd)}", flush=True)

    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, env={**os.environ, **child_env}, timeout=run_seconds + args.stop_timeout + 90
        )
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        print("locust did not finish in time", file=sys.stderr)
        rc = None
    elapsed = time.monotonic() - started

    stats_csv = Path(f"{prefix}_stats.csv")
    html = Path(f"{prefix}.html")
    try:
        rows = read_stats(stats_csv)
    except OSError as e:
        print(f"no locust stats ({e}); locust exit code {rc}", file=sys.stderr)
        return 2
    if rc is None or rc not in (0, 1):  # 1 = "there were failures", judged below
        print(f"locust exited with {rc}", file=sys.stderr)
        return 2

    thresholds = Thresholds(
        max_failure_ratio=args.max_failure_ratio,
        p95_ms=args.p95_ms,
        chat_p95_ms=args.chat_p95_ms,
        ttft_p95_ms=args.ttft_p95_ms,
        min_tokens_per_s=args.min_tokens_per_s,
        min_rps=args.min_rps,
        min_requests=args.min_requests,
        max_exceptions=args.max_exceptions,
    )
    expected = [SUITE_ROWS[s] for s in args.suite if args.mix.get(s, 1) > 0]
    exceptions = read_exception_count(Path(f"{prefix}_exceptions.csv"))
    verdict = evaluate(rows, thresholds, expected, exceptions)

    print()
    print(f"kcr load test: {', '.join(args.suite)} against {args.host}, {args.users} users, {elapsed:.1f}s")
    print(stats_table(rows))
    print()
    print(verdict_table(verdict))
    summary = {
        "suite": args.suite,
        "host": args.host,
        "users": args.users,
        "run_time": args.run_time,
        "elapsed_s": round(elapsed, 2),
        "locust_exit_code": rc,
        "stats_csv": str(stats_csv),
        "html": str(html),
        **verdict.as_dict(),
    }
    slo_json = Path(f"{prefix}_slo.json")
    slo_json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"reports: {stats_csv}  {html}  {slo_json}")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
