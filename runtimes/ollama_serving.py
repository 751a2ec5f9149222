"""Request handling of the Ollama runtime: neutral requests in, neutral events or vectors out.

Every generation is one event stream (``Start``, text, reasoning and tool-call deltas, ``Finish``
per choice, then one ``Usage``) read under one concurrency slot, choice after choice. Protocol
shapes (ids, chunks, finish-reason spellings) are the wings' business; ``OllamaModel``
(``runtimes/ollama.py``) adds the lifecycle.

A forced tool call (``tool_choice`` required or named) is generated under a JSON-schema ``format``:
its text is the call's JSON, so it is collected instead of streamed and yielded as one
``ToolCallDelta`` with ``finish_reason`` ``tool_calls``, as if Ollama had parsed a call itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from runtimes.ollama_convert import (
    ForcedCall,
    NativeChunk,
    arguments_text,
    chat_payload,
    finish_reason,
    generate_payloads,
)
from runtimes.ollama_upstream import Limiter, Upstream, UpstreamStream, translate
from server.errors import InvalidInput, KcrError, ModelNotFound, UpstreamError, UpstreamUnavailable
from server.generation import (
    EmbeddingRequest,
    EmbeddingResult,
    Event,
    Finish,
    GenerationRequest,
    ReasoningDelta,
    Start,
    TextDelta,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)


class OllamaServing:
    """The request half of ``OllamaModel``; expects ``opts``, ``upstream``, ``_tags``, ``_limiter``."""

    opts: Any
    upstream: Upstream | None
    _tags: dict[str, str]
    _limiter: Limiter

    def _on_failure(self, err: KcrError) -> None:
        """Hook: the lifecycle half re-checks Ollama at once when a request finds it gone."""

    # --- helpers --------------------------------------------------------------------------------------

    def _tag(self, name: str) -> str:
        try:
            return self._tags[name]
        except KeyError:
            raise ModelNotFound(name) from None

    def _stream(self, source: Callable[[], Any], tag: str, deadline: float) -> UpstreamStream:
        return UpstreamStream(source, tag, self.opts.first_token_timeout, deadline, self._on_failure)

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + float(self.opts.request_timeout)

    @property
    def _client(self) -> Upstream:
        if self.upstream is None:
            raise UpstreamUnavailable("Ollama is not started yet.")
        return self.upstream

    @staticmethod
    async def _next(stream: UpstreamStream) -> NativeChunk:
        try:
            return await anext(stream)
        except StopAsyncIteration:
            raise UpstreamError("Ollama ended the stream without a final chunk.") from None

    # --- generation -----------------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> AsyncIterator[Event]:
        """A chat (``messages``) or one stream per prompt, each ``request.n`` times.

        The request is checked and converted now, so those errors raise before any upstream call.
        """
        tag = self._tag(request.model)
        n = max(request.n, 1)
        keep_alive, num_ctx = self.opts.keep_alive, self.opts.num_ctx
        forced = None
        if request.prompts:
            payloads = generate_payloads(request, tag, keep_alive=keep_alive, num_ctx=num_ctx)
            client = self._client
            sources = [client.generate_source(p) for p in payloads for _ in range(n)]
        elif request.messages:
            payload, forced = chat_payload(request, tag, keep_alive=keep_alive, num_ctx=num_ctx)
            sources = [self._client.chat_source(payload)] * n
        else:
            raise InvalidInput("A generation needs messages or prompts.")
        return self._events(tag, sources, forced)

    async def _events(
        self, tag: str, sources: list[Callable[[], Any]], forced: ForcedCall | None = None
    ) -> AsyncIterator[Event]:
        """Run one upstream stream per choice (in order), under one concurrency slot.

        The first upstream chunk is read before the first event, so early failures still raise
        before a wing commits a 200. Ends with a ``Usage`` event built from Ollama's counts.
        Logprobs ride on the text they belong to; those of a chunk whose text the tool parser held
        back wait for the next text (or the choice's end).
        """
        async with self._limiter.slot():
            deadline = self._deadline()
            prompt_tokens = completion_tokens = 0
            for index, source in enumerate(sources):
                stream = self._stream(source, tag, deadline)
                collected: list[str] = []  # a forced call's JSON
                pending: tuple[TokenLogprob, ...] = ()
                try:
                    chunk = await self._next(stream)
                    yield Start(index)
                    saw_tool = False
                    while True:
                        if chunk.thinking:
                            yield ReasoningDelta(index, chunk.thinking)
                        pending += chunk.logprobs
                        if chunk.text and forced is not None:
                            collected.append(chunk.text)
                        elif chunk.text:
                            yield TextDelta(index, chunk.text, pending)
                            pending = ()
                        for call in chunk.tool_calls:
                            saw_tool = True
                            yield ToolCallDelta(
                                index, ToolCall("", call.name, arguments_text(call.arguments))
                            )
                        if chunk.done:
                            break
                        chunk = await self._next(stream)
                finally:
                    await stream.aclose()
                if pending and forced is None:
                    yield TextDelta(index, "", pending)
                if collected and not saw_tool:
                    forced_tool = _forced_call(forced, "".join(collected))
                    if forced_tool is not None:
                        saw_tool = True
                        yield ToolCallDelta(index, forced_tool)
                    else:  # cut short by the token limit: the partial JSON, as text
                        yield TextDelta(index, "".join(collected))
                prompt_tokens = max(prompt_tokens, chunk.prompt_tokens)
                completion_tokens += chunk.completion_tokens
                yield Finish(index, finish_reason(chunk.done_reason, saw_tool))
            yield Usage(prompt_tokens, completion_tokens)

    # --- embeddings -----------------------------------------------------------------------------------

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        tag = self._tag(request.model)
        if not request.inputs:
            raise InvalidInput("Nothing to embed.")
        client = self._client
        async with self._limiter.slot():
            try:
                result = await asyncio.wait_for(
                    client.client.embed(
                        model=tag,
                        input=list(request.inputs),
                        dimensions=request.dimensions,
                        keep_alive=self.opts.keep_alive,
                    ),
                    self.opts.request_timeout,
                )
            except Exception as exc:
                err = translate(exc, tag)
                self._on_failure(err)
                raise err from exc
        vectors = [list(vector) for vector in result.embeddings]
        return EmbeddingResult(vectors=vectors, prompt_tokens=int(result.prompt_eval_count or 0))


def _forced_call(forced: ForcedCall | None, text: str) -> ToolCall | None:
    """The call a forced generation wrote, or None when its JSON is incomplete (cut by the limit)."""
    parsed = forced.parse(text) if forced is not None else None
    return ToolCall("", parsed[0], parsed[1]) if parsed is not None else None
