"""Start the Ollama stand-in as a real process (for any test suite).

    from tests.ollama_standin.process import start_standin

    with start_standin() as s:            # free 127.0.0.1 port, waits until /api/version answers
        client = ollama.Client(host=s.url)
        s.set_faults(busy=1)              # POST /_standin/faults
        s.events("disconnect")            # GET /_standin/events?type=disconnect
    # leaving the block stops it (SIGTERM, then SIGKILL)

``start_standin(port=None, env=None, *, absent=False, faults=None, preload=False, timeout=60, ...)``
returns a :class:`StandinHandle` with ``url``, ``host``, ``port``, ``proc``, ``log_path``, ``stop()``,
``kill()``, ``wait_exit()``, ``set_faults(**faults)``, ``reset_faults()``, ``events(type=None, since=0)``,
``clear_events()``, ``wait_for_event(type, timeout)``, ``state()``, ``log_text()``.

The GGUF is located with :func:`model_file.ensure_gguf` in the parent (so the child starts fast) and passed as
``STANDIN_GGUF``. ``env`` entries are added to (and override) the inherited environment; see ``config.py``
for the variables. Only 127.0.0.1 is used.

A pytest fixture factory is also provided: ``standin_fixture(scope="module", **start_kwargs)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .model_file import ensure_gguf

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent
BIN = PACKAGE_DIR / "bin" / "ollama"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandinHandle:
    def __init__(self, proc: subprocess.Popen[bytes], host: str, port: int, log_path: Path):
        self.proc = proc
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.log_path = log_path

    # ------------------------------------------------------------------ lifecycle
    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait, then SIGKILL. Returns the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.poll()

    def kill(self) -> int | None:
        """SIGKILL (like ``kill -9``) and reap."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        return self.proc.poll()

    def wait_exit(self, timeout: float = 5.0) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(timeout)
        return None

    def __enter__(self) -> StandinHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ control API
    def request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def set_faults(self, faults: Mapping[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return self.request("POST", "/_standin/faults", {**(faults or {}), **kw})["faults"]

    def reset_faults(self) -> None:
        self.request("DELETE", "/_standin/faults")

    def events(self, type: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        q = f"?since={since}" + (f"&type={type}" if type else "")
        return self.request("GET", "/_standin/events" + q)["events"]

    def clear_events(self) -> None:
        self.request("DELETE", "/_standin/events")

    def wait_for_event(self, type: str, timeout: float = 5.0, since: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            evs = self.events(type, since)
            if evs:
                return evs[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {type!r} event within {timeout}s")
            time.sleep(0.02)

    def state(self) -> dict[str, Any]:
        return self.request("GET", "/_standin/state")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/version", timeout=1) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_standin(
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    absent: bool | list[str] = False,
    faults: Mapping[str, Any] | None = None,
    preload: bool = False,
    gguf: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
    log_path: str | os.PathLike[str] | None = None,
    python: str | None = None,
) -> StandinHandle:
    """Spawn ``<python> tests/ollama_standin/bin/ollama serve`` and wait until it answers."""
    port = port or free_port()
    child_env = dict(os.environ)
    child_env.pop("STANDIN_FAULTS", None)
    child_env["OLLAMA_HOST"] = f"{host}:{port}"
    child_env["STANDIN_GGUF"] = str(gguf or ensure_gguf())
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    if absent:
        child_env["STANDIN_ABSENT"] = "1" if absent is True else ",".join(absent)
    if faults:
        child_env["STANDIN_FAULTS"] = json.dumps(dict(faults))
    if preload:
        child_env["STANDIN_PRELOAD"] = "1"
    if env:
        child_env.update(env)
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix=f"ollama-standin-{port}-", suffix=".log")
        os.close(fd)
        log_path = name
    log_file = open(log_path, "wb")  # noqa: SIM115 - owned by the child
    try:
        proc = subprocess.Popen(
            [python or sys.executable, str(BIN), "serve"],
            env=child_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT),
        )
    finally:
        log_file.close()
    handle = StandinHandle(proc, host, port, Path(log_path))
    deadline = time.monotonic() + timeout
    while not _ready(handle.url):
        if proc.poll() is not None:
            raise RuntimeError(f"ollama stand-in exited with {proc.returncode}:\n{handle.log_text()[-3000:]}")
        if time.monotonic() > deadline:
            handle.kill()
            raise TimeoutError(f"ollama stand-in not ready after {timeout}s:\n{handle.log_text()[-3000:]}")
        time.sleep(0.05)
    return handle


def standin_fixture(scope: str = "module", **start_kwargs: Any) -> Any:
    """Make a pytest fixture yielding a running :class:`StandinHandle`:

    ``standin = standin_fixture(scope="session")`` in a conftest or test module.
    """
    import pytest

    @pytest.fixture(scope=scope)
    def _standin() -> Any:
        handle = start_standin(**start_kwargs)
        try:
            yield handle
        finally:
            handle.stop()

    return _standin
