"""Compressed request bodies: ``Content-Encoding: gzip`` / ``deflate`` (tritonclient's
``request_compression_algorithm``), decoded as they arrive.

The body limit (``--max-body-bytes``) applies to the decoded size: each chunk is inflated at most up
to what the limit still allows, so a compression bomb is refused with 413 after at most ``limit``
bytes of output, never inflated whole. The compressed bytes count against the same limit. An
encoding the server cannot decode is a 415 that names it.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

from server.errors import InvalidInput, PayloadTooLarge, UnsupportedEncoding

#: zlib ``wbits`` per encoding: gzip's header and trailer; deflate as zlib data (RFC 9110), or raw
#: deflate, which some clients send under that name (tried when the zlib header is absent).
_WBITS = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}


def _decoder(encoding: bytes) -> zlib._Decompress:
    wbits = _WBITS.get(encoding.strip().lower())
    if wbits is None:
        name = encoding.decode("latin-1")
        raise UnsupportedEncoding(
            f"Content-Encoding '{name}' is not supported: send the body as gzip, deflate or identity"
        )
    return zlib.decompressobj(wbits)


async def read_decoded_body(
    chunks: AsyncIterator[bytes], encoding: bytes, declared: bytes | None, limit: int
) -> bytes:
    """The body, decoded; 413 as soon as the compressed or the decoded bytes pass ``limit``."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body of {int(declared)} bytes exceeds the limit of {limit} bytes")
    decoder = _decoder(encoding)
    raw_deflate = encoding.strip().lower() == b"deflate"
    out: list[bytes] = []
    received = produced = 0
    first = True
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        if first and chunk and raw_deflate and (chunk[0] & 0x0F) != 8:
            decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
        first = first and not chunk
        data = chunk
        while data:
            try:
                piece = decoder.decompress(data, limit - produced + 1)
            except zlib.error as exc:
                name = encoding.decode("latin-1")
                raise InvalidInput(f"Request body is not valid {name} data: {exc}") from None
            produced += len(piece)
            if produced > limit:
                raise PayloadTooLarge(f"Decoded request body exceeds the limit of {limit} bytes")
            out.append(piece)
            data = decoder.unconsumed_tail
            if decoder.eof:
                break
    if not decoder.eof and received:
        raise InvalidInput(f"Request body is truncated {encoding.decode('latin-1')} data")
    return b"".join(out)
