"""Core settings, resolved once (CLI > environment > defaults) and passed down explicitly.

Nothing reads ``os.environ`` at import time: ``Settings.from_env(environ)`` takes the environment as an
argument so tests can build any configuration without patching globals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "KCR_"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime: str = "sklearn"
    model_name: str | None = None
    model_dir: str = "/mnt/models"
    host: str = "0.0.0.0"
    http_port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    timeout_keep_alive: int = Field(65, ge=0)
    log_level: str = "info"
    access_log: bool = True
    #: Bearer keys; empty means no authentication. Health, readiness and metrics are always open.
    api_keys: tuple[str, ...] = ()
    #: Largest request body accepted; beyond it the client gets 413 before we buffer it.
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1)
    #: Most scalars one request may carry (v1 instances x features, v2 tensor elements).
    max_elements: int = Field(10_000_000, ge=1)
    #: Answer the hot routes (v1 predict, v2 infer, chat/completions) in pure-ASGI layers in front of
    #: FastAPI (same handlers, same answers; see server/fastpath.py and server/openai_fastpath.py).
    fast_path: bool = True
    #: SIGTERM: stop accepting, let in-flight requests finish for at most this long.
    graceful_timeout: float = Field(30.0, ge=0)
    #: Micro-batching of concurrent predict calls for one model (sklearn). 1 disables it.
    max_batch_size: int = Field(64, ge=1)
    max_batch_wait_ms: float = Field(0.0, ge=0)
    #: Predict calls that typically take less than this run on the event loop instead of a thread.
    inline_predict_ms: float = Field(20.0, ge=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build from ``KCR_*`` variables, then apply explicit overrides (the CLI's)."""
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if name == "api_keys":
                values[name] = tuple(k.strip() for k in raw.split(",") if k.strip())
            elif field.annotation is bool:
                values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
