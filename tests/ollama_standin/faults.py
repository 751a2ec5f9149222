"""Fault injection state and the event log of the stand-in.

Faults (JSON keys accepted by ``POST /_standin/faults`` and ``STANDIN_FAULTS``; a key set to ``null``
clears it, ``{"reset": true}`` clears everything first):

``busy``           int: the next N model requests get 503 ``server busy, please try again.  maximum pending
                   requests exceeded``; ``-1`` or ``true`` = always; ``0``/``false`` = off.
``error_after``    int K: streamed responses send K NDJSON lines, then ``{"error": error_message}``
                   (status stays 200, no done line) and generation stops.
                   Non-streamed (and embed): 500 ``{"error": ...}``.
``error_message``  default ``an error was encountered while running the model``.
``error_count``    how many requests the error fault applies to (default -1 = all).
``garbage_after``  int K: after K lines, a malformed JSON line is sent and the response ends (200).
                   Non-streamed: a truncated JSON body with 200. ``garbage_count`` as above.
``die_after``      int K: after K lines are flushed, the process SIGKILLs itself (like ``kill -9``).
                   Non-streamed: dies before answering.
``delay_first``    seconds to wait before the first line (or the non-streamed body).
``delay_between``  seconds to wait between lines.
``endpoints``      list of endpoints the faults apply to (default ``["chat", "generate", "embed"]``).

Events (``GET /_standin/events?type=...&since=SEQ``): dicts with ``seq``, ``type``, ``time`` (unix seconds,
float), ``monotonic``, and type-specific fields. Types: ``request`` (``id``, ``path``, ``model``, ``stream``,
``body``), ``complete`` (``id``, ``done_reason``, ``eval_count``, ...), ``disconnect`` (``id``, ``path``,
``model``, ``lines_sent``: the HTTP client went away before the response ended), ``generation_stopped``
(``id``, ``reason``, ``tokens``: the llama.cpp worker exited early), ``fault`` (``id``, ``fault``), ``load``,
``unload``, ``pull``.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import Any

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
DEFAULT_ERROR = "an error was encountered while running the model"
DEFAULT_ENDPOINTS = ("chat", "generate", "embed")

_INT_KEYS = {"busy", "error_after", "error_count", "garbage_after", "garbage_count", "die_after"}
_FLOAT_KEYS = {"delay_first", "delay_between"}
_ALL_KEYS = _INT_KEYS | _FLOAT_KEYS | {"error_message", "endpoints"}


class Faults:
    def __init__(self, initial: dict[str, Any] | None = None):
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}
        if initial:
            self.update(initial)

    def update(self, patch: dict[str, Any]) -> dict[str, Any]:
        unknown = set(patch) - _ALL_KEYS - {"reset"}
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        with self._lock:
            if patch.get("reset"):
                self._state.clear()
            for k, v in patch.items():
                if k == "reset":
                    continue
                if v is None or v is False:
                    self._state.pop(k, None)
                    continue
                if k == "busy" and v is True:
                    v = -1
                if k in _INT_KEYS:
                    v = int(v)
                elif k in _FLOAT_KEYS:
                    v = float(v)
                elif k == "endpoints":
                    v = [str(x) for x in v]
                else:
                    v = str(v)
                if k == "busy" and v == 0:
                    self._state.pop(k, None)
                    continue
                self._state[k] = v
            return dict(self._state)

    def reset(self) -> None:
        with self._lock:
            self._state.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def applies(self, endpoint: str) -> bool:
        with self._lock:
            return endpoint in self._state.get("endpoints", DEFAULT_ENDPOINTS)

    def take_busy(self, endpoint: str) -> bool:
        """True if this request must get a 503 (consumes one unit of a counted busy fault)."""
        with self._lock:
            if endpoint not in self._state.get("endpoints", DEFAULT_ENDPOINTS):
                return False
            n = self._state.get("busy", 0)
            if n == 0:
                return False
            if n > 0:
                n -= 1
                if n == 0:
                    self._state.pop("busy", None)
                else:
                    self._state["busy"] = n
            return True

    def plan(self, endpoint: str) -> dict[str, Any]:
        """Faults for one request (consumes counted error/garbage faults)."""
        with self._lock:
            st = self._state
            if endpoint not in st.get("endpoints", DEFAULT_ENDPOINTS):
                return {}
            plan: dict[str, Any] = {
                "delay_first": st.get("delay_first", 0.0),
                "delay_between": st.get("delay_between", 0.0),
            }
            for kind in ("error", "garbage"):
                if f"{kind}_after" in st:
                    count = st.get(f"{kind}_count", -1)
                    if count == 0:
                        continue
                    plan[f"{kind}_after"] = st[f"{kind}_after"]
                    if count > 0:
                        st[f"{kind}_count"] = count - 1
                        if count - 1 == 0:
                            st.pop(f"{kind}_after", None)
                            st.pop(f"{kind}_count", None)
            if "error_after" in plan:
                plan["error_message"] = st.get("error_message", DEFAULT_ERROR)
            if "die_after" in st:
                plan["die_after"] = st["die_after"]
            return plan


class EventLog:
    def __init__(self, maxlen: int = 5000):
        self._lock = threading.Lock()
        self._events: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)

    def add(self, type_: str, **fields: Any) -> dict[str, Any]:
        ev = {"seq": 0, "type": type_, "time": time.time(), "monotonic": time.monotonic(), **fields}
        with self._lock:
            ev["seq"] = next(self._seq)
            self._events.append(ev)
        return ev

    def list(self, type_: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._events if e["seq"] > since and (type_ is None or e["type"] == type_)]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
