"""The first event of a generation, awaited before a wing answers: what every protocol wing needs.

A runtime reads the first upstream chunk before its first event, so a backend that refuses the
request (unknown model, busy, a capability the model lacks) fails here, while the wing can still
answer a real status code. A ``ModelLacksCapability`` is re-raised as a 400 naming the wing's own
parameter that asked for it (``hints``: capability → parameter), which the runtime cannot know.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from server.errors import InvalidInput, ModelLacksCapability, UpstreamError
from server.generation import Event

#: What to tell the client, per capability, after "This model cannot ...".
_ADVICE = {
    "thinking": "think: leave out '{param}' (or turn it off)",
    "tools": "call tools: leave out '{param}'",
}


async def aclose(events: AsyncIterator[Event]) -> None:
    """Close the runtime's stream (its slot, its upstream request), shielded from cancellation."""
    close = getattr(events, "aclose", None)
    if close is not None:
        with contextlib.suppress(BaseException):
            await asyncio.shield(asyncio.ensure_future(close()))


async def first_event(events: AsyncIterator[Event], hints: Mapping[str, str] | None = None) -> Event:
    try:
        return await anext(events)
    except StopAsyncIteration:
        raise UpstreamError("The model produced an empty stream.") from None
    except ModelLacksCapability as exc:
        await aclose(events)
        param = (hints or {}).get(exc.capability)
        if param is None:
            raise
        advice = _ADVICE.get(exc.capability, "do this: leave out '{param}'").format(param=param)
        raise InvalidInput(f"This model cannot {advice}. {exc.message}", param=param) from None
    except BaseException:
        await aclose(events)
        raise


async def prepend(first: Event, rest: AsyncIterator[Event]) -> AsyncIterator[Event]:
    """``first`` then ``rest``, closing ``rest`` however the consumer stops."""
    try:
        yield first
        async for event in rest:
            yield event
    finally:
        await aclose(rest)
