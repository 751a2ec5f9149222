"""Talking to Ollama: aiohttp for the generation streams (the hot path), the official ``AsyncClient``
with explicit timeouts for everything else, failures translated to ``server.errors`` types, and the
facade's own concurrency limit.

Errors surface in several shapes (``ResponseError``, ``ConnectionError``, raw ``httpx`` and
``aiohttp`` errors, pydantic ``ValidationError``), and the official client has no timeout at all by
default: ``Upstream`` hides all of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import ollama
import orjson
import pydantic

from runtimes.ollama_convert import NativeChunk
from server.errors import (
    InvalidInput,
    KcrError,
    ModelLacksCapability,
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
            lacks = _LACKS.search(text)
            if lacks is not None:  # server/routes.go: `"qwen2.5:0.5b" does not support thinking`
                return ModelLacksCapability(f"Ollama rejected the request: {text}", lacks.group(1))
            return InvalidInput(f"Ollama rejected the request: {text}")
        if status in (429, 503):
            return UpstreamUnavailable(f"Ollama is busy: {text}", retry_after=1)
        return UpstreamError(f"Ollama answered {status}: {text}")
    if isinstance(exc, (TimeoutError, httpx.TimeoutException, aiohttp.ServerTimeoutError)):
        return UpstreamTimeout("Ollama did not answer in time.")
    if isinstance(exc, (ConnectionError, httpx.ConnectError, aiohttp.ClientConnectorError)):
        return UpstreamUnavailable("Ollama is unreachable.", retry_after=2)
    if isinstance(exc, (httpx.TransportError, aiohttp.ClientError)):
        if started:
            return UpstreamError(f"Connection to Ollama lost during generation ({type(exc).__name__}).")
        return UpstreamUnavailable(f"Ollama connection failed ({type(exc).__name__}).", retry_after=2)
    if isinstance(exc, (pydantic.ValidationError, ValueError)):
        return UpstreamError(f"Ollama sent an unexpected response: {exc}")
    return UpstreamError(f"Ollama call failed: {type(exc).__name__}: {exc}")


#: Ollama's answer when a model lacks a capability (thinking, tools, insert, vision, completion).
_LACKS = re.compile(r"does not support (\w+)")


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
        try:
            return NativeChunk.from_mapping(item)
        except Exception as exc:  # a line of the wrong shape: Ollama's fault, a 502 (not our 500)
            err = UpstreamError(f"Ollama sent a stream line of an unexpected shape ({type(exc).__name__}).")
            self._fail(err)
            raise err from None

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
    """One Ollama endpoint: aiohttp for the two streaming generation calls, the official client for the rest.

    Generation streams are the hot path: measured against the stand-in, the first NDJSON line came
    ~2 ms sooner and a short stream cost 0.8 ms of CPU instead of 3.3 ms with aiohttp than with
    the ``ollama`` client over httpx (``loadtests/bench_facade.py``). Pull, show, list, embed and
    version are rare and keep the typed client.
    """

    def __init__(self, host: str, *, connect_timeout: float, read_timeout: float) -> None:
        self.host = host.rstrip("/")
        self.client = ollama.AsyncClient(
            host=host, timeout=httpx.Timeout(read_timeout, connect=connect_timeout), trust_env=False
        )
        # The client's own httpx client (same host, headers and timeouts), for /api/version.
        self.http: httpx.AsyncClient = self.client._client
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None

    def _streaming_session(self) -> aiohttp.ClientSession:
        """Created on first use: an aiohttp session belongs to the loop that is running then."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                self.host,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                headers={k: v for k, v in self.http.headers.items() if k.lower() in _FORWARDED_HEADERS},
                trust_env=False,
            )
        return self._session

    async def close(self) -> None:
        await self.http.aclose()
        if self._session is not None:
            await self._session.close()

    async def version(self, timeout: float = 2.0) -> str:
        response = await self.http.get("/api/version", timeout=timeout)
        response.raise_for_status()
        return str(response.json().get("version", ""))

    async def stream(self, path: str, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST ``payload`` with ``stream: true`` and yield each NDJSON line as a dict.

        HTTP errors and in-stream ``{"error": ...}`` lines raise ``ollama.ResponseError`` (status -1
        for the latter), so ``translate`` sees the same shapes whichever call produced them. Ending
        early (client gone, timeout) closes the connection, which is how Ollama learns to stop.

        Consumers stop at the ``done`` line, before the chunked body's end has been read. Closing
        then would discard the connection and make every request pay a new one (and Ollama's
        connection set-up) before its first token, so after ``done`` the end is read first and the
        connection goes back to the pool.
        """
        body = {k: v for k, v in payload.items() if v is not None}
        body["stream"] = True
        try:
            data = orjson.dumps(body)
        except TypeError as exc:  # e.g. an integer beyond 64 bits, which Ollama could not read either
            raise InvalidInput(f"The request cannot be sent to Ollama: {exc}.") from None
        response = await self._streaming_session().post(
            path, data=data, headers={"content-type": "application/json"}
        )
        done = False
        try:
            if response.status >= 400:
                # At most MAX_ERROR_BYTES of it (a proxy's 100 MB HTML page was read whole once).
                text = (await response.content.read(MAX_ERROR_BYTES)).decode(errors="replace")
                raise ollama.ResponseError(_error_text(text), response.status)
            pending = b""
            parts: list[bytes] = []  # a line arriving in pieces, joined once it is complete
            async for data in response.content.iter_any():
                if b"\n" not in data:
                    parts.append(data)
                    if sum(map(len, parts)) > MAX_LINE_BYTES:
                        raise ValueError(f"a stream line longer than {MAX_LINE_BYTES} bytes")
                    continue
                if parts:
                    parts.append(data)
                    data, parts = b"".join(parts), []
                *lines, pending = (pending + data).split(b"\n")
                if len(pending) > MAX_LINE_BYTES:
                    raise ValueError(f"a stream line longer than {MAX_LINE_BYTES} bytes")
                for line in lines:
                    if line.strip():
                        chunk = _parse_line(line)
                        done = chunk.get("done") is True
                        yield chunk
            if pending.strip():
                yield _parse_line(pending)
        finally:
            if done and not response.content.at_eof():
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(END_OF_BODY_TIMEOUT):
                        await response.content.read()
            if response.content.at_eof():
                response.release()
            else:
                response.close()

    def chat_source(self, payload: dict[str, Any]) -> Callable[[], Any]:
        async def start() -> AsyncIterator[dict[str, Any]]:
            return self.stream("/api/chat", payload)

        return start

    def generate_source(self, payload: dict[str, Any]) -> Callable[[], Any]:
        async def start() -> AsyncIterator[dict[str, Any]]:
            return self.stream("/api/generate", payload)

        return start


#: Longest NDJSON line accepted from Ollama: a token chunk is ~200 bytes; /api/generate's final
#: chunk carries the context's token ids (~6 bytes each: 32k tokens ~ 200 KB).
MAX_LINE_BYTES = 1024 * 1024
#: Most of an upstream error body that is read (and, bounded again, relayed).
MAX_ERROR_BYTES = 64 * 1024
#: After ``done``, how long to wait for the end of the body before giving up the connection.
END_OF_BODY_TIMEOUT = 1.0
# What the official client sends that matters upstream (its user agent, an API key a proxy may need).
_FORWARDED_HEADERS = {"user-agent", "authorization", "accept"}


def _parse_line(line: bytes) -> dict[str, Any]:
    data = orjson.loads(line)
    if not isinstance(data, dict):
        raise ValueError(f"a stream line that is not an object: {line[:80]!r}")
    if "error" in data:
        raise ollama.ResponseError(str(data["error"]), -1)
    return data


def _error_text(body: str) -> str:
    """Ollama's error bodies are ``{"error": "..."}``; anything else is passed on as it came."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    return str(data["error"]) if isinstance(data, dict) and "error" in data else body
