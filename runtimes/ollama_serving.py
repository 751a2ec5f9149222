"""Request handling of the Ollama runtime: OpenAI request models in, response models or chunk streams out.

Every request becomes one internal event stream (``Start``/``Text``/``Tools``/``Finish`` per choice,
then ``Usage``) read under one concurrency slot; the non-stream and stream paths both fold that stream,
so every chat rule is implemented once. ``OllamaModel`` (``runtimes/ollama.py``) adds the lifecycle.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from runtimes.ollama_convert import (
    NativeChunk,
    UnsupportedParameter,
    arguments_text,
    chat_payload,
    completion_options,
    completion_prompts,
    finish_reason,
    mint_id,
    mint_tool_call_id,
)
from runtimes.ollama_upstream import Limiter, Upstream, UpstreamStream, translate
from server.errors import InvalidInput, KcrError, ModelNotFound, UpstreamError, UpstreamUnavailable
from server.openai_types import (
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChunkChoice,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    Delta,
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    ResponseFunctionCall,
    ResponseMessage,
    ResponseToolCall,
    ToolCallDelta,
    ToolCallDeltaFunction,
    Usage,
)

FINGERPRINT = "fp_kcr_ollama"


def _usage(prompt: int, completion: int) -> Usage:
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


class OllamaServing:
    """The request half of ``OllamaModel``; expects ``opts``, ``upstream``, ``_tags``, ``_limiter``."""

    opts: Any
    upstream: Upstream | None
    _tags: dict[str, str]
    _limiter: Limiter

    def _on_failure(self, err: KcrError) -> None:
        """Hook: the lifecycle half re-checks Ollama at once when a request finds it gone."""

    # --- requests -------------------------------------------------------------------------------------

    def _tag(self, name: str) -> str:
        try:
            return self._tags[name]
        except KeyError:
            raise ModelNotFound(name) from None

    def _stream(self, source: Any, tag: str, deadline: float) -> UpstreamStream:
        return UpstreamStream(source, tag, self.opts.first_token_timeout, deadline, self._on_failure)

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.opts.request_timeout

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

    async def _events(self, tag: str, sources: list[Any]) -> AsyncIterator[Event]:
        """Run one upstream stream per choice (in order), under one concurrency slot.

        The first upstream chunk is read before the first event, so early failures still raise
        before the router commits a 200. Ends with a ``Usage`` event built from Ollama's counts.
        """
        async with self._limiter.slot():
            deadline = self._deadline()
            prompt_tokens = completion_tokens = 0
            for index, source in enumerate(sources):
                stream = self._stream(source, tag, deadline)
                try:
                    chunk = await self._next(stream)
                    yield Start(index)
                    saw_tool = False
                    while True:
                        if chunk.text:
                            yield Text(index, chunk.text)
                        if chunk.tool_calls:
                            saw_tool = True
                            yield Tools(
                                index,
                                [
                                    ResponseToolCall(
                                        id=mint_tool_call_id(),
                                        function=ResponseFunctionCall(
                                            name=c.name, arguments=arguments_text(c.arguments)
                                        ),
                                    )
                                    for c in chunk.tool_calls
                                ],
                            )
                        if chunk.done:
                            break
                        chunk = await self._next(stream)
                finally:
                    await stream.aclose()
                prompt_tokens = max(prompt_tokens, chunk.prompt_tokens)
                completion_tokens += chunk.completion_tokens
                yield Finish(index, finish_reason(chunk.done_reason, saw_tool))
            yield _usage(prompt_tokens, completion_tokens)

    def _chat_events(self, request: ChatCompletionRequest) -> AsyncIterator[Event]:
        tag = self._tag(request.model)
        payload = chat_payload(request, tag, keep_alive=self.opts.keep_alive, num_ctx=self.opts.num_ctx)
        source = self._client.chat_source(payload)
        return self._events(tag, [source] * (request.n or 1))

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletionResponse:
        texts: dict[int, list[str]] = {}
        calls: dict[int, list[ResponseToolCall]] = {}
        choices: list[ChatChoice] = []
        usage = Usage()
        async with contextlib.aclosing(self._chat_events(request)) as events:
            async for ev in events:
                if isinstance(ev, Text):
                    texts.setdefault(ev.index, []).append(ev.text)
                elif isinstance(ev, Tools):
                    calls.setdefault(ev.index, []).extend(ev.calls)
                elif isinstance(ev, Finish):
                    tool_calls = calls.get(ev.index)
                    text = "".join(texts.get(ev.index, []))
                    message = ResponseMessage(
                        content=text if text or not tool_calls else None, tool_calls=tool_calls
                    )
                    choices.append(ChatChoice(index=ev.index, message=message, finish_reason=ev.reason))
                elif isinstance(ev, Usage):
                    usage = ev
        return ChatCompletionResponse(
            id=mint_id("chatcmpl"),
            created=int(time.time()),
            model=request.model,
            system_fingerprint=FINGERPRINT,
            choices=choices,
            usage=usage,
        )

    async def chat_stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        cid, created = mint_id("chatcmpl"), int(time.time())
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        tool_index: dict[int, int] = {}

        def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(
                id=cid,
                created=created,
                model=request.model,
                system_fingerprint=FINGERPRINT,
                choices=choices,
                usage=usage,
                include_usage=include_usage,
            )

        async with contextlib.aclosing(self._chat_events(request)) as events:
            async for ev in events:
                if isinstance(ev, Start):
                    yield chunk([ChunkChoice(index=ev.index, delta=Delta(role="assistant", content=""))])
                elif isinstance(ev, Text):
                    yield chunk([ChunkChoice(index=ev.index, delta=Delta(content=ev.text))])
                elif isinstance(ev, Tools):
                    deltas = []
                    for call in ev.calls:
                        position = tool_index.get(ev.index, 0)
                        tool_index[ev.index] = position + 1
                        deltas.append(
                            ToolCallDelta(
                                index=position,
                                id=call.id,
                                type="function",
                                function=ToolCallDeltaFunction(
                                    name=call.function.name, arguments=call.function.arguments
                                ),
                            )
                        )
                    yield chunk([ChunkChoice(index=ev.index, delta=Delta(tool_calls=deltas))])
                elif isinstance(ev, Finish):
                    yield chunk([ChunkChoice(index=ev.index, delta=Delta(), finish_reason=ev.reason)])
                elif isinstance(ev, Usage):
                    yield chunk([], usage=ev)

    def _completion_events(self, request: CompletionRequest) -> AsyncIterator[Event]:
        tag = self._tag(request.model)
        prompts = completion_prompts(request)
        options = completion_options(request, self.opts.num_ctx)
        if request.max_tokens == 0 and not request.echo:
            raise UnsupportedParameter("max_tokens", "must be at least 1 unless echo is set")
        sources = [
            self._client.generate_source(
                model=tag,
                prompt=prompt,
                suffix=request.suffix,
                options=options,
                keep_alive=self.opts.keep_alive,
            )
            for prompt in prompts
            for _ in range(request.n or 1)
        ]
        return self._events(tag, sources)

    def _echo(self, request: CompletionRequest, index: int) -> str:
        if not request.echo:
            return ""
        return completion_prompts(request)[index // (request.n or 1)]

    async def completion(self, request: CompletionRequest) -> CompletionResponse:
        texts: dict[int, list[str]] = {}
        choices: list[CompletionChoice] = []
        usage = Usage()
        async with contextlib.aclosing(self._completion_events(request)) as events:
            async for ev in events:
                if isinstance(ev, Start):
                    texts[ev.index] = [self._echo(request, ev.index)]
                elif isinstance(ev, Text):
                    texts[ev.index].append(ev.text)
                elif isinstance(ev, Finish):
                    reason = "length" if ev.reason == "length" else "stop"
                    choices.append(
                        CompletionChoice(index=ev.index, text="".join(texts[ev.index]), finish_reason=reason)
                    )
                elif isinstance(ev, Usage):
                    usage = ev
        return CompletionResponse(
            id=mint_id("cmpl"),
            created=int(time.time()),
            model=request.model,
            system_fingerprint=FINGERPRINT,
            choices=choices,
            usage=usage,
        )

    async def completion_stream(self, request: CompletionRequest) -> AsyncIterator[CompletionResponse]:
        cid, created = mint_id("cmpl"), int(time.time())

        def chunk(choices: list[CompletionChoice], usage: Usage | None = None) -> CompletionResponse:
            return CompletionResponse(
                id=cid,
                created=created,
                model=request.model,
                system_fingerprint=FINGERPRINT,
                choices=choices,
                usage=usage,
            )

        async with contextlib.aclosing(self._completion_events(request)) as events:
            async for ev in events:
                if isinstance(ev, Start):
                    echo = self._echo(request, ev.index)
                    if echo:
                        yield chunk([CompletionChoice(index=ev.index, text=echo)])
                elif isinstance(ev, Text):
                    yield chunk([CompletionChoice(index=ev.index, text=ev.text)])
                elif isinstance(ev, Finish):
                    reason = "length" if ev.reason == "length" else "stop"
                    yield chunk([CompletionChoice(index=ev.index, text="", finish_reason=reason)])
                elif isinstance(ev, Usage):
                    yield chunk([], usage=ev)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        tag = self._tag(request.model)
        inputs = request.input
        if not isinstance(inputs, str) and not all(isinstance(i, str) for i in inputs):
            raise UnsupportedParameter("input", "as token ids is not supported; send text")
        if not inputs:
            raise InvalidInput("'input' must not be empty.", param="input")
        client = self._client
        async with self._limiter.slot():
            try:
                result = await asyncio.wait_for(
                    client.client.embed(
                        model=tag,
                        input=inputs,
                        dimensions=request.dimensions,
                        keep_alive=self.opts.keep_alive,
                    ),
                    self.opts.request_timeout,
                )
            except Exception as exc:
                err = translate(exc, tag)
                self._on_failure(err)
                raise err from exc
        data = []
        for i, vector in enumerate(result.embeddings):
            values: list[float] | str = list(vector)
            if request.encoding_format == "base64":
                values = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append(EmbeddingData(index=i, embedding=values))
        tokens = int(result.prompt_eval_count or 0)
        return EmbeddingResponse(
            data=data, model=request.model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        )


# --- the runtime's internal event stream (one per request, shared by stream and non-stream paths) -----


@dataclass(frozen=True)
class Start:
    index: int


@dataclass(frozen=True)
class Text:
    index: int
    text: str


@dataclass(frozen=True)
class Tools:
    index: int
    calls: list[ResponseToolCall]


@dataclass(frozen=True)
class Finish:
    index: int
    reason: str


Event = Start | Text | Tools | Finish | Usage
