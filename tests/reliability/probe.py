"""What the reliability tests measure on a real server process: event-loop stalls, seen as a liveness
probe would (``/v2/health/live`` every 10 ms, each answer timed), and memory (VmRSS, and the peak
VmHWM, which ``reset_peak`` restarts from the current RSS)."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path
from types import TracebackType


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def peak_mb(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


def reset_peak(pid: int) -> None:
    """From now on VmHWM is the peak since this call (Linux ``clear_refs`` 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


class Prober:
    """A liveness probe every ``interval`` s on its own connection; ``max_ms`` is the slowest answer
    (a stalled event loop answers late), ``answers`` how many came back."""

    def __init__(self, port: int, interval: float = 0.01, path: str = "/v2/health/live") -> None:
        self.port, self.interval, self.path = port, interval, path
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def max_ms(self) -> float:
        return max(self.latencies, default=0.0) * 1000

    @property
    def answers(self) -> int:
        return len(self.latencies)

    def __enter__(self) -> Prober:
        self._thread.start()
        time.sleep(0.05)  # a few probes before the request under test
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        time.sleep(0.05)
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            elapsed = time.perf_counter() - start
            if ok:
                self.latencies.append(elapsed)
            else:
                self.failures += 1
            self._stop.wait(max(0.0, self.interval - elapsed))
        conn.close()
