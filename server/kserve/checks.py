"""Bounds every decoder checks before it allocates, and the one UTF-8 rule for BYTES elements."""

from __future__ import annotations

from typing import Any

from server.errors import InvalidInput, PayloadTooLarge

#: Upper bound on the strings (BYTES elements, string instances) in one request. Each is a Python
#: object: freeing 3.3 million of them took 106 ms in one go, holding the event loop; a million
#: take about 30 ms.
MAX_STRINGS = 1_000_000


def check_elements(n: int, max_elements: int) -> None:
    if n > max_elements:
        raise PayloadTooLarge(f"Request has {n} elements; the limit is {max_elements}")


def check_strings(n: int) -> None:
    if n > MAX_STRINGS:
        raise PayloadTooLarge(f"Request has {n} strings; the limit is {MAX_STRINGS}")


def utf8_strings(name: str, values: Any) -> list[Any]:
    """BYTES elements as str for the model; bytes that are not UTF-8 are the client's error (400)."""
    out = []
    for i, x in enumerate(values):
        if isinstance(x, bytes):
            try:
                x = x.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"Input '{name}': BYTES element {i} is not valid UTF-8") from None
        out.append(x)
    return out
