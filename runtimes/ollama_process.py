"""Managed mode: run ``ollama serve`` as a child on 127.0.0.1, forward its log, stop it cleanly.

Restarting is the runtime's job (it also has to re-warm the model and flip readiness); this class only
knows how to start, watch and stop one process at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys

logger = logging.getLogger("kcr.ollama.process")


def _die_with_parent() -> None:
    """Linux: SIGTERM the child if we die without cleaning up (kill -9 of the server)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class OllamaProcess:
    def __init__(self, binary: str, bind: str, env: dict[str, str] | None = None) -> None:
        self.binary = binary
        self.bind = bind  # "127.0.0.1:11434", exported as OLLAMA_HOST
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = -1
        self._log_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        env = {**os.environ, **self.env, "OLLAMA_HOST": self.bind}
        self.proc = await asyncio.create_subprocess_exec(
            self.binary,
            "serve",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self.restarts += 1
        logger.info("started %s serve on %s (pid %d)", self.binary, self.bind, self.proc.pid)
        self._log_task = asyncio.create_task(self._forward_log(self.proc), name="ollama-log")

    async def _forward_log(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            logger.info("[ollama %d] %s", proc.pid, line.decode(errors="replace").rstrip())

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        return code

    async def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        logger.info("stopping ollama (pid %d)", proc.pid)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            logger.warning("ollama did not stop within %.0fs: killing it", timeout)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._log_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._log_task, 2)
