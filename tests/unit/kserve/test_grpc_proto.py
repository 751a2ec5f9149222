"""Our gRPC contract is KServe's: the descriptor protoc builds from server/kserve/grpc_predict_v2.proto
is byte-identical to the one in the kserve wheel (field numbers are the protocol), and the generated
modules are what scripts/gen_proto.sh makes from the .proto today."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
KSERVE_DIR = ROOT / "server" / "kserve"


def test_descriptor_is_kserves() -> None:
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as theirs

    from server.kserve import grpc_predict_v2_pb2 as ours

    assert ours.DESCRIPTOR.serialized_pb == theirs.DESCRIPTOR.serialized_pb
    # One descriptor, so both modules load in one process and share message classes.
    assert ours.ModelInferRequest is theirs.ModelInferRequest


def test_service_methods() -> None:
    from server.kserve import grpc_predict_v2_pb2 as pb

    methods = [m.name for m in pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods]
    assert methods == ["ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
                       "ModelInfer", "RepositoryModelLoad", "RepositoryModelUnload"]  # fmt: skip


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    work = tmp_path / "server" / "kserve"
    work.mkdir(parents=True)
    shutil.copy(KSERVE_DIR / "grpc_predict_v2.proto", work)
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "gen_proto.sh", tmp_path / "scripts")
    subprocess.run(["bash", str(tmp_path / "scripts" / "gen_proto.sh")], check=True, capture_output=True,
                   env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})  # fmt: skip
    for name in ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2_grpc.py", "grpc_predict_v2_pb2.pyi"):
        assert (work / name).read_text() == (KSERVE_DIR / name).read_text(), f"{name}: run `make proto`"
