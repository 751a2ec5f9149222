"""Open Inference Protocol over gRPC through the Istio gateway (used by smoke.sh): server readiness,
model metadata and one ModelInfer against the sklearn-iris-grpc InferenceService. Knative routes
HTTP/2 by ``:authority``, so the ISVC's host goes there (not in a Host header).

python3 grpc_smoke.py --target 127.0.0.1:31080 --authority sklearn-iris-grpc.kcr-demo.example.com

Needs grpcio and protobuf; the message types are the repository's (server/kserve/).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import grpc

from server.kserve import grpc_predict_v2_pb2 as pb
from server.kserve import grpc_predict_v2_pb2_grpc as pb_grpc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="host:port of the gateway (or the server)")
    parser.add_argument("--authority", help="the ISVC's status.url host, for the gateway's routing")
    parser.add_argument("--model", default="iris")
    parser.add_argument("--timeout", type=float, default=300, help="seconds (a cold start from zero)")
    args = parser.parse_args()
    options = [("grpc.default_authority", args.authority)] if args.authority else []
    start = time.monotonic()
    with grpc.insecure_channel(args.target, options=options) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        ready = stub.ServerReady(pb.ServerReadyRequest(), timeout=args.timeout, wait_for_ready=True).ready
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=args.model), timeout=30)
        request = pb.ModelInferRequest(model_name=args.model, id="smoke")
        tensor = request.inputs.add(name=meta.inputs[0].name, datatype="FP32", shape=[2, 4])
        tensor.contents.fp32_contents.extend([6.8, 2.8, 4.8, 1.4, 5.1, 3.5, 1.4, 0.2])
        reply = stub.ModelInfer(request, timeout=30)
    predictions = list(reply.outputs[0].contents.int64_contents)
    print(f"ok   gRPC ready={ready}, inputs {[(i.name, list(i.shape)) for i in meta.inputs]}, "
          f"ModelInfer -> {predictions} in {time.monotonic() - start:.1f} s")  # fmt: skip
    return 0 if ready and predictions == [1, 0] else 1


if __name__ == "__main__":
    sys.exit(main())
