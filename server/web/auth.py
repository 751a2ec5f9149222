"""Optional Bearer API keys, compared in constant time and never logged."""

from __future__ import annotations

import hmac

from starlette.types import Scope

from server.errors import InvalidInput, Unauthorized


def _extract_bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def key_matches(presented: str | None, keys: tuple[str, ...]) -> bool:
    if presented is None:
        return False
    candidate = presented.encode()
    # Compare against every key so the time taken does not reveal which one nearly matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode())
    return matched


def check_api_key(keys: tuple[str, ...], authorization: str | None) -> None:
    """Raise ``Unauthorized`` unless auth is off or the header carries one of ``keys``."""
    if not keys:
        return
    token = _extract_bearer(authorization)
    if token is None:
        raise Unauthorized("Missing API key: send it as 'Authorization: Bearer <key>'.")
    if not key_matches(token, keys):
        raise Unauthorized("Incorrect API key provided.")


def check_request(keys: tuple[str, ...], scope: Scope) -> None:
    """``check_api_key`` on a request's headers. Two ``Authorization`` headers are refused (400):
    proxies and servers disagree on which one counts, so neither may decide."""
    if not keys:
        return
    values = [v for k, v in scope["headers"] if k == b"authorization"]
    if len(values) > 1:
        raise InvalidInput(f"Send one Authorization header; this request has {len(values)}.")
    check_api_key(keys, values[0].decode("latin-1") if values else None)
