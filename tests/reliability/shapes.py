"""What a well-formed error looks like, per protocol family, and the request counter the fuzzers share."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

#: Requests sent by the fuzz tests of this session, by test; printed in the terminal summary.
FUZZ_COUNTS: Counter[str] = Counter()

OPENAI_PREFIXES = ("/v1/", "/openai/v1/")
ANTHROPIC_PATH = "/v1/messages"


def family(path: str, generative: bool) -> str:
    """``anthropic`` for ``/v1/messages`` (and below), ``openai`` for the other OpenAI routes of a
    generative server, else ``kserve`` (v1, v2, health)."""
    if generative and (path == ANTHROPIC_PATH or path.startswith(ANTHROPIC_PATH + "/")):
        return "anthropic"
    if generative and (path.startswith(OPENAI_PREFIXES) or path.startswith("/v1/models")):
        return "openai"
    return "kserve"


def anthropic_error_problem(body: Any) -> str | None:
    """None if ``body`` is Anthropic's ``{"type": "error", "error": {"type": str, "message": str}}``."""
    if not isinstance(body, dict) or body.get("type") != "error" or not isinstance(body.get("error"), dict):
        return f"not {{'type': 'error', 'error': {{...}}}}: {body!r:.200}"
    err = body["error"]
    if set(err) != {"type", "message"} or not all(isinstance(err[k], str) and err[k] for k in err):
        return f"error object {err!r:.200}"
    return None


def kserve_error_problem(body: Any) -> str | None:
    """None if ``body`` is KServe's ``{"error": "<message>"}``, else what is wrong with it."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"not {{'error': str}}: {body!r:.200}"
    if not isinstance(body["error"], str) or not body["error"]:
        return f"'error' is not a non-empty string: {body!r:.200}"
    return None


def openai_error_problem(body: Any) -> str | None:
    """None if ``body`` is OpenAI's ``{"error": {message, type, param, code}}``."""
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return f"not {{'error': {{...}}}}: {body!r:.200}"
    err = body["error"]
    if set(err) != {"message", "type", "param", "code"}:
        return f"error object keys {sorted(err)}: {body!r:.200}"
    if not isinstance(err["message"], str) or not err["message"] or not isinstance(err["type"], str):
        return f"message/type not strings: {body!r:.200}"
    if err["param"] is not None and not isinstance(err["param"], str):
        return f"param neither null nor str: {body!r:.200}"
    if err["code"] is not None and not isinstance(err["code"], str):
        return f"code neither null nor str: {body!r:.200}"
    return None


def error_problem(status: int, content: bytes, path: str, generative: bool) -> str | None:
    """None if a 4xx/5xx body is in the protocol's own error shape.

    FastAPI's ``{"detail": ...}`` for a path no route matches (404) or a method a route does not
    allow (405) is KServe's own behaviour and accepted, except under the OpenAI prefixes, where every
    answer is an OpenAI error object.
    """
    try:
        body = json.loads(content)
    except ValueError:
        return f"{status} body is not JSON: {content[:200]!r}"
    kind = family(path, generative)
    if status in (404, 405) and isinstance(body, dict) and set(body) == {"detail"} and kind == "kserve":
        return None
    if kind == "anthropic":
        return anthropic_error_problem(body)
    if kind == "openai":
        return openai_error_problem(body)
    return kserve_error_problem(body)


def sse_problem(content: bytes) -> str | None:
    """Every ``data:`` line of an event stream is JSON or ``[DONE]``; an error event has OpenAI's shape
    (or Anthropic's, for Anthropic streams: ``{"type": "error", "error": {...}}``; the Responses API's
    ``error`` event carries its fields at the top and ``response.failed`` a ``response``)."""
    for line in content.split(b"\n"):
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            continue
        try:
            event = json.loads(data)
        except ValueError:
            return f"SSE data line is not JSON: {data[:200]!r}"
        if isinstance(event, dict) and event.get("type") == "error" and isinstance(event.get("error"), dict):
            problem = anthropic_error_problem(event)
            if problem:
                return "SSE error event: " + problem
        elif isinstance(event, dict) and "error" in event:
            problem = openai_error_problem(event)
            if problem:
                return "SSE error event: " + problem
    return None
