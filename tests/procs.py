"""Start real server processes on free 127.0.0.1 ports and wait until they answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    argv: Sequence[str] = field(default_factory=list)
    #: The gRPC port it was given (kcr: always a free one, so servers never collide on 8081).
    grpc_port: int | None = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def _spawn(argv: list[str], port: int, env: dict[str, str] | None, name: str) -> ServerProcess:
    log_dir = Path(os.environ.get("KCR_TEST_LOGS", "/tmp/kcr-test-logs"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    return ServerProcess(proc, port, log_path, argv)


def wait_until(server: ServerProcess, path: str, timeout: float = 60, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log()[-3000:]}")
        try:
            if httpx.get(server.url + path, timeout=1).status_code == status:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise TimeoutError(f"server not ready after {timeout}s:\n{server.log()[-3000:]}")


def start_kcr(
    *args: str,
    env: dict[str, str] | None = None,
    ready_path: str = "/v2/health/ready",
    wait: bool = True,
    grpc: bool = False,
) -> ServerProcess:
    """``grpc``: also serve gRPC (``--enable-grpc``), on a free port like HTTP's."""
    port, grpc_port = free_port(), free_port()
    argv = [sys.executable, "-m", "server", *args, "--host", "127.0.0.1", "--http-port", str(port)]
    if "--grpc-port" not in args:
        argv += ["--grpc-port", str(grpc_port)]
    if grpc:
        argv.append("--enable-grpc")
    server = _spawn(argv, port, env, "kcr")
    server.grpc_port = grpc_port
    if wait:
        wait_until(server, ready_path)
    return server


def start_kserve(
    model_dir: Path, name: str, env: dict[str, str] | None = None, grpc: bool = False
) -> ServerProcess:
    """KServe's own model server; with ``grpc``, its gRPC server too (on a free port)."""
    port, grpc_port = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "tests.kserve_reference.sklearn_server",
        "--model_dir",
        str(model_dir),
        "--model_name",
        name,
        "--http_port",
        str(port),
        "--enable_grpc",
        "true" if grpc else "false",
        "--grpc_port",
        str(grpc_port),
    ]
    server = _spawn(argv, port, env, "kserve")
    server.grpc_port = grpc_port if grpc else None
    wait_until(server, f"/v2/models/{name}/ready", timeout=90)
    return server
