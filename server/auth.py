"""Optional Bearer API keys, compared in constant time and never logged."""

from __future__ import annotations

import hmac

from server.errors import Unauthorized


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
