"""Talking to Ollama: the official ``AsyncClient`` with explicit timeouts, raw httpx where it loses data,
failures translated to ``server.errors`` types, and the facade's own concurrency limit.

The client's streams are lazy (nothing is sent before the first ``__anext__``), errors surface there
in four different shapes (``ResponseError``, ``ConnectionError``, raw ``httpx`` errors, pydantic
``ValidationError``), and it has no timeout at all by default: ``Upstream`` hides all of that.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import ollama
import pydantic

from runtimes.ollama_convert import NativeChunk
from server.errors import (
    InvalidInput,
    KcrError,
    ModelNotFound,
    Overloaded,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

logger = logging.getLogger("kcr.ollama")


def translate(exc: BaseException, model: str, *, started: bool = False) -> KcrError:
    """Map whatever the client raised to a transport-free error the router knows how to render."""
    if isinstance(exc, KcrError):
        return exc
    if isinstance(exc, ollama.ResponseError):
        status, text = exc.status_code, exc.error
        if status == -1:
            return UpstreamError(f"Ollama failed during generation: {text}")
        if status == 404:
            return ModelNotFound(model)
        if status == 400:
            return InvalidInput(f"Ollama rejected the request: {text}")
        if status in (429, 503):
            return UpstreamUnavailable(f"Ollama is busy: {text}", retry_after=1)
        return UpstreamError(f"Ollama answered {status}: {text}")
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return UpstreamTimeout("Ollama did not answer in time.")
    if isinstance(exc, (ConnectionError, httpx.ConnectError)):
        return UpstreamUnavailable("Ollama is unreachable.", retry_after=2)
    if isinstance(exc, httpx.TransportError):
        if started:
            return UpstreamError(f"Connection to Ollama lost during generation ({type(exc).__name__}).")
        return UpstreamUnavailable(f"Ollama connection failed ({type(exc).__name__}).", retry_after=2)
    if isinstance(exc, (pydantic.ValidationError, ValueError)):
        return UpstreamError(f"Ollama sent an unexpected response: {exc}")
    return UpstreamError(f"Ollama call failed: {type(exc).__name__}: {exc}")


class Limiter:
    """At most ``concurrency`` requests upstream, at most ``max_queue`` waiting, each for ``queue_timeout``.

    Ollama's own queue does not bound requests to an already loaded model (ollama#7758), so the facade
    bounds them itself and turns overflow into 503 + ``Retry-After`` rather than unbounded latency.
    """

    def __init__(self, concurrency: int, max_queue: int, queue_timeout: float) -> None:
        self._sem = asyncio.Semaphore(concurrency)
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self.in_flight = 0
        self.queued = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._sem.locked():
            if self.queued >= self.max_queue:
                raise Overloaded("Too many requests queued for the model; retry later.", retry_after=1)
            self.queued += 1
            try:
                async with asyncio.timeout(self.queue_timeout):
                    await self._sem.acquire()
            except TimeoutError:
                raise Overloaded("Timed out waiting for a free slot; retry later.", retry_after=2) from None
            finally:
                self.queued -= 1
        else:
            await self._sem.acquire()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._sem.release()


class UpstreamStream:
    """An upstream chunk stream with a first-chunk timeout, a total deadline, and a shielded close."""

    def __init__(
        self,
        source: Callable[[], Any],
        model: str,
        first_timeout: float,
        deadline: float,
        on_failure: Callable[[KcrError], None] | None = None,
    ) -> None:
        self._source = source
        self._iter: AsyncIterator[Any] | None = None
        self._model = model
        self._first_timeout = first_timeout
        self._deadline = deadline
        self._started = False
        self._on_failure = on_failure

    def __aiter__(self) -> UpstreamStream:
        return self

    async def __anext__(self) -> NativeChunk:
        loop = asyncio.get_running_loop()
        limit = self._deadline
        if not self._started:
            limit = min(limit, loop.time() + self._first_timeout)
        try:
            async with asyncio.timeout_at(limit):
                if self._iter is None:
                    self._iter = aiter(await self._source())
                item = await anext(self._iter)
        except StopAsyncIteration:
            raise
        except TimeoutError:
            what = (
                "the total timeout" if self._started or limit == self._deadline else "the first-token timeout"
            )
            err: KcrError = UpstreamTimeout(f"Ollama did not answer within {what}.")
            self._fail(err)
            raise err from None
        except Exception as exc:
            err = translate(exc, self._model, started=self._started)
            self._fail(err)
            raise err from exc
        self._started = True
        return NativeChunk.from_mapping(item)

    def _fail(self, err: KcrError) -> None:
        if self._on_failure is not None:
            self._on_failure(err)

    async def aclose(self) -> None:
        """Close the HTTP stream so Ollama stops generating; shielded, as this runs during cancellation."""
        it, self._iter = self._iter, None
        close = getattr(it, "aclose", None)
        if close is None:
            return
        try:
            await asyncio.shield(asyncio.wait_for(close(), 5))
        except BaseException:  # closing must never mask the outcome (incl. the cancellation)
            logger.debug("closing the upstream stream failed", exc_info=True)


class Upstream:
    """One Ollama endpoint: typed client for most calls, raw JSON for chat with tools and for version."""

    def __init__(self, host: str, *, connect_timeout: float, read_timeout: float) -> None:
        self.host = host
        self.client = ollama.AsyncClient(
            host=host, timeout=httpx.Timeout(read_timeout, connect=connect_timeout), trust_env=False
        )
        # The client's own httpx client: same host, headers and timeouts for the raw calls.
        self.http: httpx.AsyncClient = self.client._client

    async def close(self) -> None:
        await self.http.aclose()

    async def version(self, timeout: float = 2.0) -> str:
        response = await self.http.get("/api/version", timeout=timeout)
        response.raise_for_status()
        return str(response.json().get("version", ""))

    async def raw_chat(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """``/api/chat`` as raw NDJSON: keeps nested tool schemas and tool-call ids intact."""
        async with self.http.stream("POST", "/api/chat", json={**payload, "stream": True}) as response:
            if response.status_code >= 400:
                body = (await response.aread()).decode(errors="replace")
                raise ollama.ResponseError(body, response.status_code)
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                data = json.loads(line)
                if "error" in data:
                    raise ollama.ResponseError(str(data["error"]), -1)
                yield data

    def chat_source(self, payload: dict[str, Any], raw: bool) -> Callable[[], Any]:
        if raw:

            async def start_raw() -> AsyncIterator[dict[str, Any]]:
                return self.raw_chat(payload)

            return start_raw

        async def start() -> Any:
            return await self.client.chat(
                model=payload["model"],
                messages=payload["messages"],
                stream=True,
                format=payload.get("format"),
                options=payload.get("options") or None,
                keep_alive=payload.get("keep_alive"),
            )

        return start

    def generate_source(self, **kwargs: Any) -> Callable[[], Any]:
        async def start() -> Any:
            return await self.client.generate(stream=True, **kwargs)

        return start
