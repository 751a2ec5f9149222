"""The gRPC cell of ``make bench``: kcr gRPC vs kcr REST (v2 JSON) vs KServe 0.21's gRPC server, iris
LogisticRegression, one instance per request, concurrency 64, each server pinned to core 0.

The load generator is h2load (nghttp2, C: it never runs out of CPU before a Python server does)
sending a fixed gRPC request (5-byte length prefix + the serialized ``ModelInferRequest``, typed FP32
contents, which both servers accept) as 64 concurrent streams over 4 HTTP/2 connections; REST is
wrk with 64 connections, as the other cells. Each server's answer to the same request is checked
first (same predictions); h2load counts HTTP status only, so that check is what guards gRPC errors.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

CONCURRENCY = 64
CONNECTIONS = 4


def grpc_body(directory: Path) -> tuple[Path, Any]:
    from server.kserve import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name="iris")
    tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[1, 4])
    tensor.contents.fp32_contents.extend([6.8, 2.8, 4.8, 1.4])
    data = request.SerializeToString()
    path = directory / "grpc-request.bin"
    path.write_bytes(b"\x00" + struct.pack(">I", len(data)) + data)
    return path, request


def grpc_answer(target: str, request: Any) -> list[int]:
    import grpc

    from server.kserve import grpc_predict_v2_pb2_grpc as pb_grpc

    with grpc.insecure_channel(target) as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    (out,) = response.outputs
    if response.raw_output_contents:
        import numpy as np

        return np.frombuffer(response.raw_output_contents[0], dtype="<i8").tolist()
    return list(out.contents.int64_contents)


def run_h2load(port: int, body: Path, seconds: float, load_core: str) -> dict[str, float]:
    argv = ["taskset", "-c", load_core, "h2load", "-n", "0", "-D", str(max(1, round(seconds))),
            "-c", str(CONNECTIONS), "-m", str(CONCURRENCY // CONNECTIONS), "-d", str(body),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"http://127.0.0.1:{port}/inference.GRPCInferenceService/ModelInfer"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    m = re.search(
        r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", out
    )
    errors = float(int(m.group(2)) + int(m.group(3))) if m else float("nan")
    # "time for request:  min  max  mean  sd  +/- sd" (h2load has no percentiles): mean as p50 stand-in.
    t = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out)
    mean_ms = _ms(t.group(3)) if t else float("nan")
    return {"rps": rps, "p50_ms": mean_ms, "p99_ms": _ms(t.group(2)) if t else float("nan"), "errors": errors}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def available() -> bool:
    return shutil.which("h2load") is not None
