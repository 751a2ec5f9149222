"""Side-by-side benchmark: kcr's sklearn server vs KServe 0.21's own model server.

Same models, same machine, each server pinned to one core (``taskset``), the load generator (wrk)
on another, targets interleaved (KServe, kcr, KServe, ... alternating which goes first), several
repetitions, medians. Writes ``results.json``, ``results.md`` (tables with ratios) and ``bench.png``
(throughput and p99 vs concurrency) into ``--out``.

    python -m loadtests.bench_kserve --out bench-results          # full matrix (~15 min)
    python -m loadtests.bench_kserve --quick --out /tmp/bench     # 1 rep, 2 s per cell

Matrix: iris LogisticRegression and RandomForest(100) x v1/v2 x 1/32 instances x concurrency
1/8/64; plus cold start (spawn -> model ready, and spawn -> first prediction), RSS after warm-up,
and installed size of a fresh venv for each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.procs import ServerProcess, free_port  # noqa: E402

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2], [7.7, 3.0, 6.1, 2.3]]
MODELS = {"lr": "iris", "rf": "iris-rf"}
SERVER_CORE, LOAD_CORE = "0", "1"


@dataclass
class Server(ServerProcess):
    """A server process (start/stop/url from the tests' helper) plus what the benchmark reads."""

    name: str = ""

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


#: ``--baseline TREE``: kcr from another checkout (a git worktree of an older commit), measured in
#: the same run, interleaved with the others, under this name; the tables show only kcr and KServe.
BASELINE_KIND = "kcr-baseline"
BASELINE_TREE: Path | None = None


def server_argv(
    kind: str,
    model_dir: Path,
    name: str,
    port: int,
    python: str,
    extra: Sequence[str] = (),
    grpc_port: int = 0,
) -> list[str]:
    if kind in ("kcr", BASELINE_KIND):
        return [
            python,
            "-m",
            "server",
            "serve",
            "sklearn",
            "--model-dir",
            str(model_dir),
            "--model-name",
            name,
            "--host",
            "127.0.0.1",
            "--http-port",
            str(port),
            "--grpc-port",
            str(grpc_port or free_port()),
            *(["--enable-grpc"] if grpc_port else []),
            *extra,
        ]
    return [
        python,
        "-m",
        "tests.kserve_reference.sklearn_server",
        "--model_dir",
        str(model_dir),
        "--model_name",
        name,
        "--http_port",
        str(port),
        "--enable_grpc",
        "true" if grpc_port else "false",
        "--grpc_port",
        str(grpc_port or free_port()),
    ]


def start(
    kind: str,
    model_dir: Path,
    name: str,
    python: str,
    log_dir: Path,
    extra: Sequence[str] = (),
    grpc: bool = False,
) -> tuple[Server, float]:
    port, grpc_port = free_port(), free_port() if grpc else 0
    argv = ["taskset", "-c", SERVER_CORE, *server_argv(kind, model_dir, name, port, python, extra, grpc_port)]
    log_path = log_dir / f"{kind}-{name}-{port}.log"
    t0 = time.perf_counter()
    with log_path.open("wb") as log:
        cwd = BASELINE_TREE if kind == BASELINE_KIND else ROOT  # ``python -m server`` runs the cwd's tree
        proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    server = Server(proc, port, log_path, argv, grpc_port=grpc_port or None, name=kind)
    wait_ready(server, name)
    return server, time.perf_counter() - t0


def wait_ready(server: Server, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.proc.returncode}")
            try:
                if client.get(f"{server.url}/v2/models/{name}/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.002)
    raise TimeoutError(f"{server.name} not ready")


def body_for(protocol: str, instances: int) -> tuple[str, bytes]:
    rows = (ROWS * ((instances + len(ROWS) - 1) // len(ROWS)))[:instances]
    if protocol == "v1":
        return "v1", json.dumps({"instances": rows}).encode()
    flat = [v for row in rows for v in row]
    tensor = {"name": "input-0", "shape": [instances, 4], "datatype": "FP32", "data": flat}
    return "v2", json.dumps({"inputs": [tensor]}).encode()


def path_for(protocol: str, name: str) -> str:
    return f"/v1/models/{name}:predict" if protocol == "v1" else f"/v2/models/{name}/infer"


def train_demo_models(python: str, out: Path, *names: str) -> None:
    """``images/train_demo_models.py`` for ``names``: writes ``out/<name>/model.joblib``."""
    only = [arg for name in names for arg in ("--only", name)]
    argv = [python, str(ROOT / "images" / "train_demo_models.py"), "--out", str(out), *only]
    subprocess.run(argv, check=True, capture_output=True)


def wrk_script(body: bytes, directory: Path) -> Path:
    script = directory / f"wrk-{abs(hash(body))}.lua"
    escaped = body.decode().replace("\\", "\\\\").replace("'", "\\'")
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = \'{escaped}\'\nwrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(url: str, script: Path, concurrency: int, seconds: float) -> dict[str, float]:
    argv = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        result[f"p{pct}_ms"] = _ms(re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    if socket_errors:
        result["errors"] += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return result


def check_same(servers: dict[str, Server], name: str, protocol: str, body: bytes) -> None:
    answers = {}
    for kind, server in servers.items():
        r = httpx.post(
            server.url + path_for(protocol, name), content=body, headers={"content-type": "application/json"}
        )
        r.raise_for_status()
        data = r.json()
        answers[kind] = data["predictions"] if protocol == "v1" else data["outputs"][0]["data"]
    if len({json.dumps(a) for a in answers.values()}) != 1:
        raise AssertionError(f"servers disagree on {name} {protocol}: {answers}")


def _tree_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def venv_size_mb(spec: list[str], workdir: Path) -> tuple[float, float]:
    """(fresh pip venv, the same venv slimmed as Dockerfile.sklearn does: the test suites of
    numpy/scipy/pandas/sklearn and pip/setuptools removed), for whichever server ``spec`` installs.
    The slimmed venv stays in ``workdir/venv``: cold start and RSS are measured in it."""
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *spec], check=True, cwd=ROOT)
    fresh = _tree_mb(venv)
    site = next(venv.glob("lib/python*/site-packages"))
    for package in ("numpy", "scipy", "pandas", "sklearn"):
        for tests in list((site / package).rglob("tests")):
            if tests.is_dir():
                shutil.rmtree(tests, ignore_errors=True)
    for package in ("pip", "setuptools", "wheel"):
        for path in site.glob(f"{package}*"):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
    slim = _tree_mb(venv)
    return fresh, slim


WARM_UP_REQUESTS = 500


def warm_up(server: Server, name: str, requests: int) -> None:
    """``requests`` each of v1 and v2 (JSON), 1 and 32 instances, before RSS is read."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(requests):
            protocol = "v1" if i % 2 == 0 else "v2"
            _, body = body_for(protocol, 1 if i % 4 < 2 else 32)
            headers = {"content-type": "application/json"}
            r = client.post(path_for(protocol, name), content=body, headers=headers)
            r.raise_for_status()


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="1 rep, 2 s cells, 2 cold starts, no sizes")
    parser.add_argument("--models", default="lr,rf")
    parser.add_argument("--protocols", default="v1,v2")
    parser.add_argument("--instances", default="1,32")
    parser.add_argument("--concurrency", default="1,8,64")
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--no-sizes", action="store_true")
    parser.add_argument("--only-sizes", action="store_true", help="just the installed-size comparison")
    parser.add_argument("--python", default=sys.executable, help="interpreter with kcr and kserve installed")
    parser.add_argument("--no-grpc", action="store_true", help="skip the gRPC cell (needs h2load)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also measure kcr from this checkout (e.g. `git worktree add /tmp/base <commit>`), "
        f"interleaved, as '{BASELINE_KIND}'",
    )
    args = parser.parse_args()
    global BASELINE_TREE
    BASELINE_TREE = args.baseline
    if args.quick:
        args.reps, args.duration, args.cold_starts, args.no_sizes = 1, 2.0, 2, True
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (Debian: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'})")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="kcr-bench-"))
    model_root = work / "models"
    train_demo_models(args.python, model_root, "iris", "iris-rf")
    results: dict[str, Any] = {
        "cells": [],
        "cold_start": {},
        "size_mb": {},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    kinds: tuple[str, ...] = ("kserve", "kcr", BASELINE_KIND) if args.baseline else ("kserve", "kcr")
    if args.baseline:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=args.baseline, capture_output=True, text=True
        ).stdout.strip()
        results["baseline"] = {"tree": str(args.baseline), "commit": commit or "unknown"}
    if args.only_sizes:
        args.models, args.cold_starts = "", 0
    for key in filter(None, args.models.split(",")):
        name = MODELS[key]
        servers = {kind: start(kind, model_root / name, name, args.python, work)[0] for kind in kinds}
        try:
            cells = [
                (p, int(i), int(c))
                for p in args.protocols.split(",")
                for i in args.instances.split(",")
                for c in args.concurrency.split(",")
            ]
            samples: dict[tuple[str, str, int, int], list[dict[str, float]]] = {}
            for protocol, instances, _ in cells:
                _, body = body_for(protocol, instances)
                check_same(servers, name, protocol, body)
            for rep in range(args.reps):
                order = kinds if rep % 2 == 0 else kinds[::-1]
                for protocol, instances, conc in cells:
                    _, body = body_for(protocol, instances)
                    script = wrk_script(body, work)
                    for kind in order:
                        url = servers[kind].url + path_for(protocol, name)
                        if rep == 0:
                            run_wrk(url, script, conc, 1)  # warm-up
                        sample = run_wrk(url, script, conc, args.duration)
                        samples.setdefault((kind, protocol, instances, conc), []).append(sample)
                        print(
                            f"{key} {protocol} n={instances} c={conc} {kind}: {sample['rps']:.0f} req/s "
                            f"p99 {sample['p99_ms']:.2f} ms",
                            flush=True,
                        )
            for (kind, protocol, instances, conc), runs in samples.items():
                results["cells"].append(
                    {
                        "model": key,
                        "server": kind,
                        "protocol": protocol,
                        "instances": instances,
                        "concurrency": conc,
                        "rps": median([r["rps"] for r in runs]),
                        "p50_ms": median([r["p50_ms"] for r in runs]),
                        "p99_ms": median([r["p99_ms"] for r in runs]),
                        "errors": sum(r["errors"] for r in runs),
                        "runs": runs,
                    }
                )
        finally:
            for server in servers.values():
                server.stop()
    if not args.no_grpc and not args.only_sizes:
        results["grpc"] = grpc_cell(args, model_root, work)
    # Installed size; then cold start and RSS in those venvs, as each server is installed (the
    # development venv carries test tools, e.g. rich, that scikit-learn imports when present).
    pythons = {kind: args.python for kind in kinds}
    if not args.no_sizes or args.only_sizes:
        # kcr as the image has it (with the pandas extra: records and content_type "pd", as KServe),
        # and the numeric install (no pandas); cold start and RSS run in the first.
        specs = {
            "kcr": [f"{ROOT}[sklearn,pandas]"],
            "kcr-numeric": [f"{ROOT}[sklearn]"],
            "kserve": ["kserve==0.21.0", "scikit-learn", "joblib"],
        }
        for kind, spec in specs.items():
            venv_dir = work / f"venv-{kind}"
            results["size_mb"][kind] = venv_size_mb(spec, venv_dir)
            if kind in kinds:
                pythons[kind] = str(venv_dir / "venv" / "bin" / "python")
                if kind == "kcr" and args.baseline:
                    pythons[BASELINE_KIND] = pythons[kind]  # the baseline tree runs from its cwd
            else:
                shutil.rmtree(venv_dir, ignore_errors=True)
        results["cold_start_python"] = "fresh venvs, slimmed as in our image"
    # Cold start: spawn -> model ready, and spawn -> first prediction answered; RSS after warm-up.
    name = MODELS["lr"]
    for kind in kinds if args.cold_starts else ():
        results["cold_start"][kind] = {"ready_s": [], "first_prediction_s": [], "rss_mb": []}
    for rep in range(args.cold_starts):
        for kind in kinds if rep % 2 == 0 else kinds[::-1]:
            server, ready = start(kind, model_root / name, name, pythons[kind], work)
            try:
                r = httpx.post(server.url + path_for("v1", name), json={"instances": ROWS[:1]})
                first = ready + r.elapsed.total_seconds()
                r.raise_for_status()
                warm_up(server, name, WARM_UP_REQUESTS)
                rss = server.rss_mb()
            finally:
                server.stop()
            results["cold_start"][kind]["ready_s"].append(ready)
            results["cold_start"][kind]["first_prediction_s"].append(first)
            results["cold_start"][kind]["rss_mb"].append(rss)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "results.md").write_text(render_markdown(results, args))
    try:
        plot(results, args.out / "bench.png")
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)")
    print((args.out / "results.md").read_text())
    shutil.rmtree(work, ignore_errors=True)


def grpc_cell(args: argparse.Namespace, model_root: Path, work: Path) -> dict[str, Any]:
    """kcr gRPC vs kcr REST v2 vs KServe gRPC, LogisticRegression, 1 instance, concurrency 64."""
    from loadtests import bench_grpc

    if not bench_grpc.available():
        sys.exit("h2load is needed for the gRPC cell (Debian: apt-get install nghttp2-client; or --no-grpc)")
    name = MODELS["lr"]
    servers = {
        kind: start(kind, model_root / name, name, args.python, work, grpc=True)[0]
        for kind in ("kserve", "kcr")
    }
    try:
        body, request = bench_grpc.grpc_body(work)
        answers = {k: bench_grpc.grpc_answer(f"127.0.0.1:{s.grpc_port}", request) for k, s in servers.items()}
        if len({str(a) for a in answers.values()}) != 1:
            raise AssertionError(f"servers disagree over gRPC: {answers}")
        _, rest_body = body_for("v2", 1)
        check_same({"kcr": servers["kcr"]}, name, "v2", rest_body)
        script = wrk_script(rest_body, work)
        targets = {
            "kcr-grpc": lambda d: bench_grpc.run_h2load(servers["kcr"].grpc_port, body, d, LOAD_CORE),
            "kcr-rest": lambda d: run_wrk(servers["kcr"].url + path_for("v2", name), script, 64, d),
            "kserve-grpc": lambda d: bench_grpc.run_h2load(servers["kserve"].grpc_port, body, d, LOAD_CORE),
        }
        samples: dict[str, list[dict[str, float]]] = {k: [] for k in targets}
        for rep in range(args.reps):
            order = list(targets) if rep % 2 == 0 else list(targets)[::-1]
            for kind in order:
                if rep == 0:
                    targets[kind](1)  # warm-up
                sample = targets[kind](args.duration)
                samples[kind].append(sample)
                print(f"grpc cell {kind}: {sample['rps']:.0f} req/s", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    return {k: {"rps": median([r["rps"] for r in v]), "errors": sum(r["errors"] for r in v), "runs": v}
            for k, v in samples.items()}  # fmt: skip


def render_markdown(results: dict[str, Any], args: argparse.Namespace) -> str:
    cells = {
        (c["model"], c["server"], c["protocol"], c["instances"], c["concurrency"]): c
        for c in results["cells"]
    }
    lines = [
        f"Medians of {args.reps} interleaved run(s) of {args.duration:g} s per cell; each server pinned to "
        f"one core, wrk on another. Ratio = kcr / KServe (throughput) and KServe / kcr (p99).",
        "",
        "| model | protocol | instances | concurrency | KServe req/s | kcr req/s | ratio "
        "| KServe p99 ms | kcr p99 ms | p99 ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (model, server, protocol, instances, conc), ours in sorted(cells.items()):
        if server != "kcr":
            continue
        theirs = cells.get((model, "kserve", protocol, instances, conc))
        if theirs is None:
            continue
        flag = " (errors!)" if ours["errors"] or theirs["errors"] else ""
        label = "LogisticRegression" if model == "lr" else "RandomForest(100)"
        ratio = ours["rps"] / theirs["rps"]
        lines.append(
            f"| {label} | {protocol} | {instances} | {conc} | {theirs['rps']:.0f} | {ours['rps']:.0f} "
            f"| **{ratio:.1f}x**{flag} | {theirs['p99_ms']:.2f} | {ours['p99_ms']:.2f} "
            f"| {theirs['p99_ms'] / ours['p99_ms']:.1f}x |"
        )
    lines += ["", "| | KServe | kcr | ratio |", "|---|---|---|---|"]
    cold = results["cold_start"]
    if cold:
        for metric, label in (
            ("ready_s", "cold start: spawn → model ready (s)"),
            ("first_prediction_s", "cold start: spawn → first prediction (s)"),
        ):
            k, o = median(cold["kserve"][metric]), median(cold["kcr"][metric])
            lines.append(f"| {label} | {k:.2f} | {o:.2f} | {k / o:.1f}x faster |")
        where = results.get("cold_start_python", "the --python interpreter")
        lines.append(f"| (cold start and RSS measured in) | {where} | | |")
    if cold:
        k, o = median(cold["kserve"]["rss_mb"]), median(cold["kcr"]["rss_mb"])
        label = f"RSS after warm-up ({WARM_UP_REQUESTS} v1/v2 requests, MB)"
        lines.append(f"| {label} | {k:.0f} | {o:.0f} | {k / o:.2f}x smaller |")
    if results["size_mb"]:
        (k, ks), (o, os_) = results["size_mb"]["kserve"], results["size_mb"]["kcr"]
        label = "installed size, fresh pip venv, with pandas (MB)"
        lines.append(f"| {label} | {k:.0f} | {o:.0f} | {k / o:.2f}x smaller |")
        if "kcr-numeric" in results["size_mb"]:
            n = results["size_mb"]["kcr-numeric"][0]
            label = "installed size, fresh pip venv, kcr without pandas (`[sklearn]`) (MB)"
            lines.append(f"| {label} | {k:.0f} | {n:.0f} | {k / n:.2f}x smaller |")
        label = "installed size, venv slimmed as in our image, with pandas (MB)"
        lines.append(f"| {label} | {ks:.0f} | {os_:.0f} | {ks / os_:.2f}x smaller |")
    grpc = results.get("grpc")
    if grpc:
        kcr, rest, kserve = grpc["kcr-grpc"]["rps"], grpc["kcr-rest"]["rps"], grpc["kserve-grpc"]["rps"]
        flag = " (errors!)" if any(v["errors"] for v in grpc.values()) else ""
        lines += [
            "",
            "gRPC: LogisticRegression, 1 instance, concurrency 64 "
            "(h2load: 4 connections x 16 streams; REST: wrk)",
            "",
            "| KServe gRPC req/s | kcr gRPC req/s | kcr REST v2 req/s "
            "| kcr gRPC / KServe gRPC | kcr gRPC / kcr REST |",
            "|---|---|---|---|---|",
            f"| {kserve:.0f} | {kcr:.0f} | {rest:.0f} | **{kcr / kserve:.1f}x**{flag} | {kcr / rest:.2f}x |",
        ]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for col, model in enumerate(("lr", "rf")):
        for server, color in (("kcr", "tab:blue"), ("kserve", "tab:orange")):
            for protocol, style in (("v1", "-"), ("v2", "--")):
                pts = sorted(
                    (c["concurrency"], c["rps"], c["p99_ms"])
                    for c in results["cells"]
                    if c["model"] == model
                    and c["server"] == server
                    and c["protocol"] == protocol
                    and c["instances"] == 1
                )
                if not pts:
                    continue
                xs = [p[0] for p in pts]
                label = f"{'kcr' if server == 'kcr' else 'KServe 0.21'} {protocol}"
                axes[0][col].plot(xs, [p[1] for p in pts], style, color=color, marker="o", label=label)
                axes[1][col].plot(xs, [p[2] for p in pts], style, color=color, marker="o", label=label)
        title = "LogisticRegression" if model == "lr" else "RandomForest(100)"
        axes[0][col].set_title(f"iris {title}, 1 instance/request: throughput")
        axes[1][col].set_title(f"iris {title}: p99 latency")
        axes[0][col].set_ylabel("requests/s")
        axes[1][col].set_ylabel("p99 ms")
        axes[1][col].set_yscale("log")
        for row in (0, 1):
            axes[row][col].set_xscale("log", base=2)
            axes[row][col].set_xlabel("concurrent connections")
            axes[row][col].legend()
            axes[row][col].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
