"""Core settings, resolved once (CLI > environment > defaults) and passed down explicitly.

Nothing reads ``os.environ`` at import time: ``Settings.from_env(environ)`` takes the environment as an
argument so tests can build any configuration without patching globals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

ENV_PREFIX = "KCR_"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    runtime: str = "sklearn"
    model_name: str | None = None
    model_dir: str = "/mnt/models"
    host: str = "0.0.0.0"
    http_port: int = Field(8080, ge=0, le=65535)
    #: Open Inference Protocol over gRPC (predictive models): off unless asked for (True needs the
    #: ``grpc`` extra); KServe's default is on, see ``server.app.serve_grpc`` for why ours is not.
    enable_grpc: bool | None = None
    grpc_port: int = Field(8081, ge=0, le=65535)
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
    #: Seconds a client has to send a request's headers (from its first byte, or from connecting).
    header_timeout: float = Field(10.0, ge=0)
    #: Seconds a request body may pause between chunks before the request is answered 408.
    body_timeout: float = Field(30.0, ge=0)
    #: Open connections beyond this are answered 503 and closed at once.
    max_connections: int = Field(1000, ge=1)
    #: SIGTERM: stop accepting, let in-flight requests finish for at most this long.
    graceful_timeout: float = Field(30.0, ge=0)
    #: Micro-batching of concurrent predict calls for one model (sklearn). 1 disables it.
    max_batch_size: int = Field(64, ge=1)
    max_batch_wait_ms: float = Field(0.0, ge=0)
    #: Predict calls that typically take less than this run on the event loop instead of a thread.
    inline_predict_ms: float = Field(20.0, ge=0)

    @field_validator("model_name")
    @classmethod
    def _usable_name(cls, name: str | None, info: ValidationInfo) -> str | None:
        """A name clients can reach in a URL path: refused at start-up rather than served "ready" but
        unreachable. KServe's routes take one path segment; the OpenAI facade's model ids may hold ``/``.
        Dot segments (``..``) are resolved away by clients; control characters cannot be sent."""
        if name is None:
            return name
        segment_only = info.data.get("runtime") != "ollama"
        parts = name.split("/")
        if (
            not name
            or (segment_only and len(parts) > 1)
            or any(p.strip(".") == "" for p in parts)
            or not name.isprintable()
        ):
            rule = "one path segment (no /)" if segment_only else "a path without empty or dot segments"
            raise ValueError(f"model name {name!r} cannot be reached in a URL: use {rule}, printable")
        return name

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Build from ``KCR_*`` variables, then apply explicit overrides (the CLI's)."""
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if name == "api_keys":
                keys = tuple(k.strip() for k in raw.split(",") if k.strip())
                if not keys:
                    # Set but blank ("", " ", ","): almost certainly a broken secret, not a wish
                    # to serve without authentication.
                    raise ValueError(
                        "KCR_API_KEYS is set but holds no key; unset it to serve without authentication"
                    )
                values[name] = keys
            elif field.annotation is bool:
                values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
