"""What the OpenAI facade adds on top of Ollama: time to first token and streaming tokens/s, through
the facade vs directly against the same Ollama stand-in (SmolLM2-135M via llama-cpp), at
concurrency 1 and 4, interleaved repetitions, medians. Two facade modes: a streamed chat completion
(``facade``) and a streamed Responses API call (``responses``, first ``response.output_text.delta``),
whose added time to first token should be no worse than chat's.

    python -m loadtests.bench_facade --out bench-results          # writes facade.json / facade.md

The stand-in runs on core 0; the facade and the client share core 1 (the client does the same work
in both modes: read a stream, timestamp tokens). Both modes ask for the same greedy (temperature 0)
32-token completion, so they stream the same tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ollama_standin.process import free_port, start_standin  # noqa: E402

MODEL = "smollm2:135m"
PROMPT = "Write a short poem about the sea."


def stream_direct(client: httpx.Client, url: str, max_tokens: int) -> tuple[float, list[float]]:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "options": {"temperature": 0, "seed": 1, "num_predict": max_tokens},
    }
    start = time.perf_counter()
    stamps: list[float] = []
    with client.stream("POST", url + "/api/chat", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line and json.loads(line).get("message", {}).get("content"):
                stamps.append(time.perf_counter())
    return start, stamps


def stream_facade(client: httpx.Client, url: str, max_tokens: int) -> tuple[float, list[float]]:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "temperature": 0,
        "seed": 1,
        "max_tokens": max_tokens,
    }
    start = time.perf_counter()
    stamps: list[float] = []
    with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
    return start, stamps


def stream_responses(client: httpx.Client, url: str, max_tokens: int) -> tuple[float, list[float]]:
    body = {
        "model": MODEL,
        "input": PROMPT,
        "stream": True,
        "temperature": 0,
        "max_output_tokens": max_tokens,
    }
    start = time.perf_counter()
    stamps: list[float] = []
    with client.stream("POST", url + "/v1/responses", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "response.output_text.delta" and event["delta"]:
                stamps.append(time.perf_counter())
    return start, stamps


FNS = {"direct": stream_direct, "facade": stream_facade, "responses": stream_responses}
MODES = tuple(FNS)


def run(mode: str, url: str, concurrency: int, requests: int, max_tokens: int) -> list[dict[str, float]]:
    fn = FNS[mode]
    results: list[dict[str, float]] = []
    lock = threading.Lock()
    per_worker = requests // concurrency

    def worker() -> None:
        with httpx.Client(timeout=120) as client:
            for _ in range(per_worker):
                start, stamps = fn(client, url, max_tokens)
                if len(stamps) < 2:
                    raise RuntimeError(f"{mode}: stream produced {len(stamps)} tokens")
                sample = {
                    "ttft_ms": (stamps[0] - start) * 1000,
                    "tokens_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
                    "tokens": len(stamps),
                }
                with lock:
                    results.append(sample)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def paired_ttft(urls: dict[str, str], requests: int, max_tokens: int) -> dict[str, list[float]]:
    """TTFT of short streams, direct, via chat and via Responses in turn, one request at a time.

    A 2 ms target needs more samples than the 32-token runs give (TTFT varies by ±3 ms between
    requests here), and rotating the order request by request cancels drift in the stand-in's speed.
    """
    out: dict[str, list[float]] = {mode: [] for mode in MODES}
    clients = {mode: httpx.Client(timeout=120) for mode in MODES}
    try:
        for i in range(requests):
            order = MODES[i % len(MODES) :] + MODES[: i % len(MODES)]
            for mode in order:
                start, stamps = FNS[mode](clients[mode], urls[mode], max_tokens)
                if not stamps:
                    raise RuntimeError(f"{mode}: stream produced no token")
                out[mode].append((stamps[0] - start) * 1000)
    finally:
        for client in clients.values():
            client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--requests", type=int, default=8, help="per repetition, mode and concurrency")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument(
        "--ttft-requests", type=int, default=300, help="short streams per mode for the paired TTFT run"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    can_pin = hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() >= 2
    if can_pin:
        os.sched_setaffinity(0, {1})
    standin = start_standin(preload=True, env={"STANDIN_THREADS": "1"})
    port = free_port()
    facade = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "serve",
            "ollama",
            "--ollama-host",
            standin.url,
            "--model",
            MODEL,
            "--host",
            "127.0.0.1",
            "--http-port",
            str(port),
            "--max-concurrency",
            "4",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    facade_url = f"http://127.0.0.1:{port}"
    try:
        if can_pin:
            os.sched_setaffinity(standin.pid, {0})
            os.sched_setaffinity(facade.pid, {1})
        deadline = time.monotonic() + 120
        while not _ready(facade_url):
            if time.monotonic() > deadline or facade.poll() is not None:
                raise RuntimeError("facade did not become ready")
            time.sleep(0.1)
        urls = {"direct": standin.url, "facade": facade_url, "responses": facade_url}
        for mode in urls:  # warm-up: load the model, fill caches
            run(mode, urls[mode], 1, 2, args.max_tokens)
        ttft = paired_ttft(urls, args.ttft_requests, 2)
        d50, f50, r50 = (statistics.median(ttft[m]) for m in MODES)
        print(f"paired TTFT (c=1): direct p50 {d50:.2f} ms, chat p50 {f50:.2f} ms, "
              f"responses p50 {r50:.2f} ms", flush=True)  # fmt: skip
        samples: dict[tuple[str, int], list[dict[str, float]]] = {}
        for rep in range(args.reps):
            for conc in (1, 4):
                for mode in MODES if rep % 2 == 0 else MODES[::-1]:
                    got = run(mode, urls[mode], conc, args.requests, args.max_tokens)
                    samples.setdefault((mode, conc), []).extend(got)
                    print(
                        f"rep {rep} c={conc} {mode}: TTFT p50 "
                        f"{statistics.median(s['ttft_ms'] for s in got):.1f} ms, "
                        f"{statistics.median(s['tokens_per_s'] for s in got):.1f} tok/s",
                        flush=True,
                    )
    finally:
        facade.terminate()
        facade.wait(15)
        standin.stop()
    d, f, r = ttft["direct"], ttft["facade"], ttft["responses"]
    summary: dict[str, Any] = {
        "paired_ttft": {
            "requests_per_mode": len(d),
            "direct_p50_ms": statistics.median(d),
            "facade_p50_ms": statistics.median(f),
            "responses_p50_ms": statistics.median(r),
            "direct_p90_ms": _pct(d, 0.9),
            "facade_p90_ms": _pct(f, 0.9),
            "responses_p90_ms": _pct(r, 0.9),
            "median_paired_difference_ms": statistics.median(b - a for a, b in zip(d, f, strict=True)),
            "responses_median_paired_difference_ms": statistics.median(
                b - a for a, b in zip(d, r, strict=True)
            ),
        }
    }
    p = summary["paired_ttft"]
    lines = [
        f"Time to first token, concurrency 1: {len(d)} short (2-token) streams per mode, direct, via the "
        "facade's chat completions and via its Responses API in turn, SmolLM2-135M on the llama-cpp Ollama "
        "stand-in.",
        "",
        "| | direct | via chat | added | via Responses | added |",
        "|---|---|---|---|---|---|",
        f"| TTFT p50 (ms) | {p['direct_p50_ms']:.2f} | {p['facade_p50_ms']:.2f} "
        f"| **{p['facade_p50_ms'] - p['direct_p50_ms']:+.2f}** | {p['responses_p50_ms']:.2f} "
        f"| **{p['responses_p50_ms'] - p['direct_p50_ms']:+.2f}** |",
        f"| TTFT p90 (ms) | {p['direct_p90_ms']:.2f} | {p['facade_p90_ms']:.2f} "
        f"| {p['facade_p90_ms'] - p['direct_p90_ms']:+.2f} | {p['responses_p90_ms']:.2f} "
        f"| {p['responses_p90_ms'] - p['direct_p90_ms']:+.2f} |",
        f"| median of paired differences (ms) | | | {p['median_paired_difference_ms']:+.2f} | "
        f"| {p['responses_median_paired_difference_ms']:+.2f} |",
        "",
        f"Streaming: medians over {args.reps} x {args.requests} streamed chat requests per cell "
        f"({args.max_tokens} tokens, greedy). At concurrency 4 the stand-in generates one stream at a "
        "time, so TTFT there is mostly queueing behind the other three.",
        "",
        "| concurrency | via | TTFT direct ms | TTFT via facade ms | added ms | tok/s direct "
        "| tok/s via facade | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for conc in (1, 4):
        d = samples[("direct", conc)]
        td, rd = statistics.median(s["ttft_ms"] for s in d), statistics.median(s["tokens_per_s"] for s in d)
        cell: dict[str, float] = {"ttft_direct_ms": td, "tps_direct": rd}
        for mode, label in (("facade", "chat"), ("responses", "Responses")):
            f = samples[(mode, conc)]
            tf, rf = (
                statistics.median(s["ttft_ms"] for s in f),
                statistics.median(s["tokens_per_s"] for s in f),
            )
            cell[f"ttft_{mode}_ms"], cell[f"tps_{mode}"] = tf, rf
            lines.append(f"| {conc} | {label} | {td:.1f} | {tf:.1f} | {tf - td:+.1f} | {rd:.1f} | {rf:.1f} "
                         f"| {rf / rd:.2f}x |")  # fmt: skip
        summary[f"c{conc}"] = cell
    (args.out / "facade.json").write_text(json.dumps({"summary": summary}, indent=1))
    (args.out / "facade.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    main()
