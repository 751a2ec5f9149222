"""Request bodies → validated request models, read the way FastAPI's routes read them.

The hot routes read their body themselves (no framework on the request path), so this keeps what
clients saw when FastAPI validated it: JSON when the content type is ``application/json`` or
``application/*+json``, any other content type a 400, the same messages and ``param`` for a body that
does not validate, and "We could not parse the JSON body of your request." for one that is not JSON.
One difference: a body sent without a content type is read as JSON (the old fast path of the chat
routes served those; FastAPI refused them).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from server.errors import InvalidInput
from server.openai.errors import InvalidRequest
from server.web.http import Request

M = TypeVar("M", bound=BaseModel)

PARSE_ERROR = "We could not parse the JSON body of your request."


def _is_json(content_type: str | None) -> bool:
    """JSON unless the client said otherwise: ``application/json`` or ``application/*+json``
    (the rule FastAPI applied; a body sent without a content type is read as JSON)."""
    if content_type is None or content_type == "application/json":
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.count("/") != 1:
        return False
    main, sub = kind.split("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


#: Bodies larger than this are parsed and validated in a worker thread (a 30 MB chat body took
#: seconds of pydantic work, on the event loop).
OFFLOAD_BYTES = 64 * 1024
#: List sizes refused before validation builds a model per element (1M content parts, 30 MB:
#: +730 MB of pydantic objects). The OpenAI API's own limits where it has them (2048 inputs,
#: 128 tools).
MAX_ITEMS = {"messages": 10_000, "tools": 128, "prompt": 2048, "input": 2048}
MAX_CONTENT_PARTS = 10_000
#: JSON objects one body may hold, counted on the raw bytes before parsing: parsing 1M content
#: parts (30 MB) alone peaked at +446 MB. Braces inside strings count too; a real chat body (even a
#: whole context window of code) is far from this.
MAX_OBJECTS = 200_000


async def read(model: type[M], request: Request) -> M:
    """The request's body as ``model``, off the event loop when it is large."""
    raw = await request.body()
    content_type = request.header(b"content-type")
    if len(raw) <= OFFLOAD_BYTES:
        return decode(model, raw, content_type)
    return await asyncio.to_thread(decode, model, raw, content_type)


def check_sizes(data: Any) -> None:
    """Refuse lists too long to validate element by element, naming the field."""
    if not isinstance(data, dict):
        return
    for key, limit in MAX_ITEMS.items():
        value = data.get(key)
        if isinstance(value, list) and len(value) > limit:
            raise InvalidInput(f"'{key}' has {len(value)} items; at most {limit} are accepted.", param=key)
    messages = data.get("messages")
    if isinstance(messages, list):
        parts = sum(
            len(m["content"]) for m in messages if isinstance(m, dict) and isinstance(m.get("content"), list)
        )
        if parts > MAX_CONTENT_PARTS:
            raise InvalidInput(
                f"The messages have {parts} content parts; at most {MAX_CONTENT_PARTS} are accepted.",
                param="messages",
            )


def decode(model: type[M], raw: bytes, content_type: str | None) -> M:
    """The validated request, or ``InvalidInput`` with what FastAPI's body validation answered."""
    if not raw:
        raise InvalidInput("Invalid request: Field required")
    if not _is_json(content_type):
        data: Any = raw
    else:
        # In 1 MB slices: one count over 30 MB holds the GIL (and so the event loop) for ~20 ms.
        objects = sum(raw.count(b"{", i, i + (1 << 20)) for i in range(0, len(raw), 1 << 20))
        if objects > MAX_OBJECTS:
            raise InvalidInput(f"The body holds {objects} JSON objects; at most {MAX_OBJECTS} are accepted.")
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        else:
            check_sizes(parsed)
            try:
                return model.model_validate(parsed)
            except ValidationError:
                pass
            del parsed
        # Not strict JSON (NaN, Infinity, lone surrogates, UTF-16) or not valid: decode it as the
        # standard library does, for the errors (and the few bodies) FastAPI's route answered.
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            raise InvalidInput(PARSE_ERROR) from None
        except ValueError:  # not UTF-8/16/32 at all
            raise InvalidInput("There was an error parsing the body") from None
        except RecursionError:  # nested deeper than the interpreter's stack
            raise InvalidInput(PARSE_ERROR) from None
        check_sizes(data)
    try:
        return model.model_validate(data, from_attributes=True)
    except ValidationError as exc:
        raise InvalidRequest(exc) from None
