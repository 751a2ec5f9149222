"""Micro-batching on vs off (``--max-batch-size 1``) for iris RandomForest(100), v1, one instance per
request, at concurrency 1 and 64: server on core 0, wrk on core 1, interleaved, medians of 3 x 4 s.

    python -m loadtests.bench_batching --out bench-results     # writes batching.md (~2 minutes)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from loadtests.bench_kserve import ROOT, run_wrk, start, train_demo_models, wrk_script

BODY = b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}'
PATH = "/v1/models/iris:predict"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kcr-batching-"))
    train_demo_models(sys.executable, work, "iris-rf")
    script = wrk_script(BODY, work)
    servers = {
        name: start("kcr", work / "iris-rf", "iris", sys.executable, work, extra)[0]
        for name, extra in (("on (default)", ()), ("off (--max-batch-size 1)", ("--max-batch-size", "1")))
    }
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        for rep in range(3):
            order = list(servers.items()) if rep % 2 == 0 else list(reversed(servers.items()))
            for concurrency in (1, 64):
                for name, server in order:
                    url = server.url + PATH
                    if rep == 0:
                        run_wrk(url, script, concurrency, 1)  # warm-up
                    results.setdefault((name, concurrency), []).append(run_wrk(url, script, concurrency, 4))
    finally:
        for server in servers.values():
            server.stop()
    lines = ["| batching | concurrency | req/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for (name, concurrency), runs in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rps, p50, p99 = (statistics.median(r[key] for r in runs) for key in ("rps", "p50_ms", "p99_ms"))
        lines.append(f"| {name} | {concurrency} | {rps:.0f} | {p50:.2f} | {p99:.2f} |")
    (args.out / "batching.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
