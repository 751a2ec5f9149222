"""What grpcio itself allows on one core: calls/s of an empty ``ModelInfer`` handler, so the gRPC
cell of ``make bench`` can be read against the transport's own ceiling.

Three servers, each pinned to core 0 and loaded by h2load on core 1 exactly as the gRPC cell is
(the same request, 64 streams over 4 connections):

- ``aio``: ``grpc.aio`` with uvloop, what KServe's model server uses;
- ``threads``: ``grpc.server`` with 64 pool threads, what kcr uses;
- ``threads+loop``: the same, each call handed to an event loop and back
  (``run_coroutine_threadsafe``), which is kcr's hop to its dataplane, with nothing done there.

    python -m loadtests.grpc_ceiling --out bench-results   # writes grpc-ceiling.json there
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

from loadtests import bench_grpc
from loadtests.bench_kserve import LOAD_CORE, ROOT, SERVER_CORE
from tests.procs import free_port

MODES = ("aio", "threads", "threads+loop")


def serve(mode: str, port: int) -> None:
    import grpc
    import uvloop

    from server.kserve import grpc_predict_v2_pb2 as pb
    from server.kserve import grpc_predict_v2_pb2_grpc as pb_grpc

    options = [("grpc.optimization_target", "throughput")]  # as kcr's server
    answer = pb.ModelInferResponse(model_name="iris")
    if mode == "aio":

        class Aio(pb_grpc.GRPCInferenceServiceServicer):
            async def ModelInfer(self, request: Any, context: Any) -> Any:
                return answer

        async def main() -> None:
            server = grpc.aio.server(options=options)
            pb_grpc.add_GRPCInferenceServiceServicer_to_server(Aio(), server)  # type: ignore[no-untyped-call]
            server.add_insecure_port(f"127.0.0.1:{port}")
            await server.start()
            await server.wait_for_termination()

        uvloop.run(main())
        return
    loop = uvloop.new_event_loop()

    async def nothing() -> Any:
        return answer

    class Threads(pb_grpc.GRPCInferenceServiceServicer):
        def ModelInfer(self, request: Any, context: Any) -> Any:
            if mode == "threads":
                return answer
            return asyncio.run_coroutine_threadsafe(nothing(), loop).result()

    server = grpc.server(futures.ThreadPoolExecutor(64), options=options)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(Threads(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    loop.run_forever()


def _answers(target: str, request: Any) -> None:
    import grpc

    from server.kserve import grpc_predict_v2_pb2_grpc as pb_grpc

    with grpc.insecure_channel(target) as channel:
        reply = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    assert reply.model_name == "iris", reply


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if not bench_grpc.available():
        sys.exit("h2load is needed (Debian: apt-get install nghttp2-client)")
    work = Path(tempfile.mkdtemp(prefix="kcr-grpc-ceiling-"))
    body, request = bench_grpc.grpc_body(work)
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for mode in MODES:
            port = free_port()
            argv = ["taskset", "-c", SERVER_CORE, sys.executable, "-m", "loadtests.grpc_ceiling",
                    "--serve", mode, "--port", str(port)]  # fmt: skip
            servers[mode] = (subprocess.Popen(argv, cwd=ROOT), port)
        time.sleep(2)
        for _, port in servers.values():
            _answers(f"127.0.0.1:{port}", request)
            bench_grpc.run_h2load(port, body, 1, LOAD_CORE)  # warm-up
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
        for rep in range(args.reps):
            for mode in MODES if rep % 2 == 0 else MODES[::-1]:
                sample = bench_grpc.run_h2load(servers[mode][1], body, args.duration, LOAD_CORE)
                runs[mode].append(sample)
                print(f"{mode}: {sample['rps']:.0f} calls/s", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()
    result = {
        "modes": {m: {"rps": statistics.median(r["rps"] for r in v), "runs": v} for m, v in runs.items()},
        "reps": args.reps,
        "duration_s": args.duration,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grpc-ceiling.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({m: v["rps"] for m, v in result["modes"].items()}))


if __name__ == "__main__":
    main()
