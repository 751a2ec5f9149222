"""The access log, written in batches.

One ``logging`` call per request costs about 14 µs (a LogRecord, a formatter, a lock and a flushed
write): a third of a small predict request's budget. Lines here are formatted like the CLI's log
format and written together once per event-loop iteration, so a burst of requests costs one write,
and a lone request is still logged at once.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import TextIO

LOGGER_NAME = "kcr.access"


class AccessLog:
    def __init__(self, stream: TextIO | None = None, max_lines: int = 512) -> None:
        self._stream = stream
        self._max_lines = max_lines
        self._lines: list[str] = []
        self._scheduled = False
        self._second = -1
        self._stamp = ""

    @staticmethod
    def wanted() -> bool:
        """Honours the log level: ``kcr.access`` below INFO (e.g. --log-level warning) turns it off."""
        return logging.getLogger(LOGGER_NAME).isEnabledFor(logging.INFO)

    def record(
        self, client: str, method: str, path: str, status: int, ms: float, request_id: str, cut: bool = False
    ) -> None:
        """``cut``: a stream the server ended at shutdown, logged with `` cut-at-shutdown``."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        if not (path.isprintable() and '"' not in path and method.isalpha()):
            method, path = _escaped(method), _escaped(path)
        self._lines.append(
            f'{self._stamp},{int((now - second) * 1000):03d} INFO {LOGGER_NAME}: {client} "{method} {path}" '
            f"{status} {ms:.2f}ms rid={request_id}{' cut-at-shutdown' if cut else ''}\n"
        )
        if len(self._lines) >= self._max_lines:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (called from a thread): write now
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        stream = self._stream or sys.stderr
        try:
            stream.write("".join(lines))
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full stderr must not fail requests


def _escaped(text: str, limit: int = 2048) -> str:
    """Client-controlled text for one log line: no newlines, control characters or bare quotes (a
    decoded ``%0A`` in a path would otherwise forge a log line), and at most ``limit`` characters."""
    escaped = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return escaped if len(escaped) <= limit else escaped[:limit] + f"...(+{len(escaped) - limit})"
