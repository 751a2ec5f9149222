"""Large numeric v1 bodies decoded in bounded steps.

``orjson.loads`` and ``np.asarray`` hold the GIL from start to end, so even in a worker thread one
call on a 12 MB body held the event loop for 250 ms (probes included). A body of the plain shape
``{"instances": [[...], ...]}`` with no strings is cut at its rows into pieces of about
``PIECE_BYTES``, each parsed and converted on its own: the loop gets the GIL back between pieces,
and only one piece's Python objects are alive at a time. Finding the rows is vectorized: the depth
of brackets, and the commas between rows, are numpy operations over the bytes.
"""

from __future__ import annotations

import re

import numpy as np
import orjson

from server.errors import InvalidInput, PayloadTooLarge

PIECE_BYTES = 512 * 1024
_PLAIN = re.compile(rb'\s*\{\s*"(instances|inputs)"\s*:\s*\[')
_END = re.compile(rb"\]\s*\}\s*$")


def numeric_instances(body: bytes, max_elements: int) -> np.ndarray | None:
    """A plain numeric v1 body's instances as one array (as ``np.asarray`` would make it), or None
    when the body is not of that shape or not valid JSON (the caller decodes it as usual)."""
    try:
        pieces = numeric_rows(body)
    except orjson.JSONDecodeError:
        return None
    except ValueError as exc:  # np.asarray: rows of different lengths
        raise InvalidInput(f"Instances do not form a regular array: {exc}") from None
    if pieces is None:
        return None
    total = sum(p.size for p in pieces)
    if total > max_elements:
        raise PayloadTooLarge(f"Request has {total} elements; the limit is {max_elements}")
    try:
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    except ValueError as exc:
        raise InvalidInput(f"Instances do not form a regular array: {exc}") from None


def numeric_rows(body: bytes) -> list[np.ndarray] | None:
    """The rows of a plain numeric v1 body as arrays of consecutive rows (one per piece, in order),
    or None when the body is not of that shape (the caller decodes it as usual)."""
    if len(body) <= PIECE_BYTES or body.count(b'"') != 2:
        return None
    head, tail = _PLAIN.match(body), _END.search(body, max(0, len(body) - 4096))  # not a 60 MB scan
    if head is None or tail is None:
        return None
    start, end = head.end(), tail.start()  # inside the instances array: "[...], [...]"
    inner = np.frombuffer(body, dtype=np.uint8, count=end - start, offset=start)
    if inner.size == 0:
        return None
    pieces: list[np.ndarray] = []
    depth, cut = 0, 0
    for block_start in range(0, inner.size, PIECE_BYTES):  # each numpy call over one block only
        block = inner[block_start : block_start + PIECE_BYTES]
        steps = (block == ord("[")).astype(np.int32) - (block == ord("]")).astype(np.int32)
        level = np.cumsum(steps) + depth
        depth = int(level[-1])
        between_rows = np.flatnonzero((block == ord(",")) & (level == 0))
        if between_rows.size:
            last = block_start + int(between_rows[-1])
            pieces.append(_parse(body, start + cut, start + last))
            cut = last + 1
    pieces.append(_parse(body, start + cut, end))
    return pieces


def _parse(body: bytes, a: int, b: int) -> np.ndarray:
    return np.asarray(orjson.loads(b"[" + body[a:b] + b"]"))
