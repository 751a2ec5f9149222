"""podman helpers for the image tests: environment from shared/tools/container-env.sh, timed builds,
containers that are always removed, and a JSON report of sizes and timings."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REPORT = Path(os.environ.get("KCR_IMAGE_REPORT", "/tmp/kcr-image-report.json"))
BUILD_LOGS = Path(os.environ.get("KCR_TEST_LOGS", "/tmp/kcr-test-logs"))


def shared_dir() -> Path | None:
    for candidate in (os.environ.get("KCR_SHARED_DIR"), ROOT.parent / "shared", Path("/work/shared")):
        if candidate and Path(candidate, "tools", "container-env.sh").is_file():
            return Path(candidate)
    return None


def container_env(arm64: bool) -> dict[str, str]:
    """Run container-env.sh once (idempotent; ~2-4 min the first time on a machine) and parse its exports."""
    shared = shared_dir()
    if shared is None:
        raise RuntimeError("shared/tools/container-env.sh not found (set KCR_SHARED_DIR)")
    args = ["bash", str(shared / "tools" / "container-env.sh"), *(["--arm64"] if arm64 else [])]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=1200).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def record(section: str, key: str, value: Any) -> None:
    data = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    data.setdefault(section, {})[key] = value
    REPORT.write_text(json.dumps(data, indent=2, sort_keys=True))


def podman(
    *args: str, check: bool = True, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], check=check, capture_output=True, text=True, timeout=timeout, **kw
    )


def build(
    tag: str, dockerfile: str, context: Path = ROOT, platform: str | None = None, **build_args: str
) -> float:
    """Build with podman (docker format, for HEALTHCHECK); returns seconds. Log in $KCR_TEST_LOGS."""
    BUILD_LOGS.mkdir(parents=True, exist_ok=True)
    argv = ["podman", "build", *shlex.split(os.environ.get("BUILD_FLAGS", "")), "--format", "docker"]
    if platform:
        argv += ["--platform", platform]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    argv += ["-f", dockerfile, "-t", tag, str(context)]
    log = BUILD_LOGS / f"build-{tag.replace('/', '_').replace(':', '_')}.log"
    start = time.monotonic()
    with log.open("w") as fh:
        result = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, timeout=1800)
    seconds = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"build of {tag} failed ({log}):\n{log.read_text()[-4000:]}")
    record("build_seconds", tag, round(seconds, 1))
    record("size_mb", tag, round(image_size(tag) / 1e6, 1))
    return seconds


def image_size(tag: str) -> int:
    return int(podman("image", "inspect", tag, "--format", "{{.Size}}").stdout.strip())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Container:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict[str, Any]:
        return json.loads(podman("inspect", self.name, "--format", "{{json .State}}").stdout)

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post(self, path: str, body: Any, timeout: float = 30) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def wait_ready(self, path: str = "/v2/health/ready", timeout: float = 60) -> float:
        """Seconds from now until ``path`` answers 200; raises with the logs if the container dies."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with contextlib.suppress(OSError):
                if self.get(path, timeout=2)[0] == 200:
                    return time.monotonic() - start
            if not self.state().get("Running"):
                raise RuntimeError(f"container {self.name} exited:\n{self.logs()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout}s:\n{self.logs()[-4000:]}")


@contextlib.contextmanager
def run(
    image: str,
    *args: str,
    name: str,
    options: tuple[str, ...] = (),
    host_net: bool = False,
    port: int | None = None,
) -> Iterator[Container]:
    """``podman run -d`` publishing 8080 on a free 127.0.0.1 port (or --net host); removed afterwards."""
    podman("rm", "-f", "-t", "5", name, check=False)
    port = port or free_port()
    net = ["--net", "host"] if host_net else ["-p", f"127.0.0.1:{port}:8080"]
    podman("run", "-d", "--name", name, *net, *options, image, *args)
    container = Container(name, port)
    try:
        yield container
    finally:
        BUILD_LOGS.mkdir(parents=True, exist_ok=True)
        (BUILD_LOGS / f"container-{name}.log").write_text(container.logs())
        podman("rm", "-f", "-t", "5", name, check=False, timeout=60)
