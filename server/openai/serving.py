"""OpenAI requests → neutral ``server.generation`` requests, and neutral events → OpenAI responses
(whole, or as stream chunks).

Every OpenAI-specific rule lives here, so a backend never sees one: ``developer`` is a system
message, text parts are joined and images must be base64 data URIs, an assistant's tool-call
arguments must be JSON, ``tool_choice`` must name a tool that was sent, ``response_format`` is the
output format, ``max_completion_tokens`` wins over ``max_tokens``. What this server cannot do
(``logprobs``, ``logit_bias``, ``best_of`` > ``n``, prompts as token ids) is refused with a 400
naming the parameter: nothing accepted is silently ignored.

Responses are plain dicts written with orjson: a stream chunk costs one small dict, where a
pydantic model per chunk cost several times more (``server.openai.types`` keeps the models that
document these shapes, and the unit tests hold the two equal).
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import struct
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from server import generation as g
from server.errors import InvalidInput
from server.openai import types as t
from server.openai.errors import UnsupportedParameter
from server.openai.sse import frame

# --- requests ----------------------------------------------------------------------------------------

_ROLES = {"developer": "system", "function": "tool"}


def _content(message: t.ChatMessage, index: int) -> tuple[str, tuple[str, ...]]:
    """Text parts joined with newlines (Ollama would split them into messages); data-URI images apart."""
    content = message.content
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content, ()
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        if part.type == "text":
            texts.append(part.text or "")
        elif part.type == "image_url" and part.image_url is not None:
            url = part.image_url.url
            if not url.startswith("data:") or ";base64," not in url:
                raise InvalidInput(
                    "Only base64 data URIs are supported for images.", param=f"messages[{index}].content"
                )
            images.append(url.split(";base64,", 1)[1])
        else:
            raise InvalidInput(
                f"Unsupported content part type '{part.type}'.", param=f"messages[{index}].content"
            )
    return "\n".join(texts), tuple(images)


def messages(chat: Sequence[t.ChatMessage]) -> tuple[g.Message, ...]:
    """Roles mapped, tool-call arguments checked, each tool result named after the call it answers."""
    names_by_id: dict[str, str] = {}
    out: list[g.Message] = []
    for i, m in enumerate(chat):
        text, images = _content(m, i)
        role = cast(g.Role, _ROLES.get(m.role, m.role))
        calls: list[g.ToolCall] = []
        if m.role == "assistant" and m.tool_calls:
            for j, call in enumerate(m.tool_calls):
                arguments = call.function.arguments or "{}"
                try:
                    json.loads(arguments)
                except ValueError:
                    raise InvalidInput(
                        "Invalid tool call arguments: not valid JSON.",
                        param=f"messages[{i}].tool_calls[{j}].function.arguments",
                    ) from None
                if call.id:
                    names_by_id[call.id] = call.function.name
                calls.append(g.ToolCall(call.id or "", call.function.name, arguments))
        tool_name = tool_call_id = None
        if role == "tool":
            tool_name = names_by_id.get(m.tool_call_id or "") or m.name or None
            tool_call_id = m.tool_call_id or None
        out.append(g.Message(role, text, images, tuple(calls), tool_call_id, tool_name))
    return tuple(out)


def _sampling(req: t.ChatCompletionRequest | t.CompletionRequest) -> g.Sampling:
    if req.logit_bias:
        raise UnsupportedParameter("logit_bias")
    stop = req.stop
    return g.Sampling(
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        stop=() if stop is None else (stop,) if isinstance(stop, str) else tuple(stop),
    )


def _output_format(fmt: t.ResponseFormat | None) -> str | dict[str, Any] | None:
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return "json"
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise InvalidInput("response_format.json_schema.schema is required.", param="response_format")
    return fmt.json_schema.schema_


def _tools(req: t.ChatCompletionRequest) -> tuple[tuple[g.Tool, ...], g.ToolChoice]:
    tools = tuple(
        g.Tool(x.function.name, x.function.description, x.function.parameters) for x in req.tools or ()
    )
    choice = req.tool_choice
    if choice is None or choice == "auto":
        return tools, g.ToolChoice()
    if isinstance(choice, str):
        return tools, g.ToolChoice(choice)
    name = choice.function.name
    if tools and all(x.name != name for x in tools):
        raise InvalidInput(f"tool_choice names unknown tool '{name}'.", param="tool_choice")
    return tools, g.ToolChoice("named", name)


def chat_request(req: t.ChatCompletionRequest) -> g.GenerationRequest:
    if req.logprobs or req.top_logprobs:
        raise UnsupportedParameter("logprobs")
    sampling = _sampling(req)
    chat = messages(req.messages)
    output_format = _output_format(req.response_format)
    tools, tool_choice = _tools(req)
    limit = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    return g.GenerationRequest(
        model=req.model,
        messages=chat,
        n=req.n or 1,
        tools=tools,
        tool_choice=tool_choice,
        sampling=sampling,
        max_tokens=limit,
        output_format=output_format,
    )


#: Choices per request (prompts x n): 48 KB of prompts at n=128 once expanded to ~0.5 GB up front.
MAX_CHOICES = 128


def prompts(req: t.CompletionRequest) -> tuple[str, ...]:
    prompt = req.prompt
    if isinstance(prompt, str):
        return (prompt,)
    if prompt and all(isinstance(p, str) for p in prompt):
        return tuple(cast(list[str], prompt))
    raise UnsupportedParameter("prompt", "as token ids is not supported; send text")


def completion_request(req: t.CompletionRequest) -> g.GenerationRequest:
    texts = prompts(req)
    if req.logprobs:
        raise UnsupportedParameter("logprobs")
    if req.best_of is not None and req.best_of > (req.n or 1):
        raise UnsupportedParameter("best_of", "greater than n is not supported")
    if len(texts) * (req.n or 1) > MAX_CHOICES:
        raise InvalidInput(
            f"{len(texts)} prompts x n={req.n} is {len(texts) * (req.n or 1)} choices; "
            f"at most {MAX_CHOICES} are generated per request.",
            param="n",
        )
    sampling = _sampling(req)
    if req.max_tokens == 0 and not req.echo:
        raise UnsupportedParameter("max_tokens", "must be at least 1 unless echo is set")
    return g.GenerationRequest(
        model=req.model,
        prompts=texts,
        suffix=req.suffix,
        n=req.n or 1,
        sampling=sampling,
        max_tokens=req.max_tokens or None,  # 0 (with echo): the model's own limit, as before
    )


def embedding_request(req: t.EmbeddingRequest) -> g.EmbeddingRequest:
    inputs = req.input
    if not isinstance(inputs, str) and not all(isinstance(i, str) for i in inputs):
        raise UnsupportedParameter("input", "as token ids is not supported; send text")
    if not inputs:
        raise InvalidInput("'input' must not be empty.", param="input")
    texts = (inputs,) if isinstance(inputs, str) else tuple(cast(list[str], inputs))
    return g.EmbeddingRequest(model=req.model, inputs=texts, dimensions=req.dimensions)


# --- responses ---------------------------------------------------------------------------------------

_ID_ALPHABET = string.ascii_lowercase + string.digits


def mint_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def mint_call_id() -> str:
    """OpenAI-style ``call_`` id, for calls the backend gave none (Ollama never does)."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def _head(prefix: str, kind: str, model: str, fingerprint: str) -> dict[str, Any]:
    """What a whole response and every chunk of a stream begin with (one id, one ``created``)."""
    return {
        "id": mint_id(prefix),
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": fingerprint,
    }


async def _close(events: AsyncIterator[g.Event]) -> None:
    """Ends the backend's stream (its slot, its upstream request) when a fold stops early."""
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


def usage_object(usage: g.Usage) -> dict[str, int]:
    p, c = usage.prompt_tokens, usage.completion_tokens
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _call_object(call: g.ToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.arguments}
    return {"id": call.id or mint_call_id(), "type": "function", "function": function}


def _completion_reason(reason: g.FinishReason) -> str:
    return "length" if reason == "length" else "stop"


async def chat_response(
    events: AsyncIterator[g.Event], model: str, fingerprint: str
) -> tuple[dict[str, Any], g.Usage]:
    """A whole ``chat.completion`` from the events, and the usage (for the metrics)."""
    texts: dict[int, list[str]] = {}
    calls: dict[int, list[dict[str, Any]]] = {}
    choices: list[dict[str, Any]] = []
    usage = g.Usage()
    try:
        async for ev in events:
            if isinstance(ev, g.TextDelta):
                texts.setdefault(ev.index, []).append(ev.text)
            elif isinstance(ev, g.ToolCallDelta):
                calls.setdefault(ev.index, []).append(_call_object(ev.call))
            elif isinstance(ev, g.Finish):
                tool_calls = calls.get(ev.index)
                text = "".join(texts.get(ev.index, ()))
                message: dict[str, Any] = {
                    "role": "assistant",
                    "content": text if text or not tool_calls else None,
                    "refusal": None,
                }
                if tool_calls:
                    message["tool_calls"] = tool_calls
                message["annotations"] = []
                choices.append(
                    {"index": ev.index, "message": message, "logprobs": None, "finish_reason": ev.reason}
                )
            elif isinstance(ev, g.Usage):
                usage = ev
    finally:
        await _close(events)
    body = _head("chatcmpl", "chat.completion", model, fingerprint)
    body.update(choices=choices, usage=usage_object(usage))
    return body, usage


async def completion_response(
    events: AsyncIterator[g.Event], model: str, fingerprint: str, echo: Sequence[str] = (), n: int = 1
) -> tuple[dict[str, Any], g.Usage]:
    """A whole ``text_completion``; ``echo``: the prompts, when the client asked to have them back
    (choice ``i`` answers prompt ``i // n``)."""
    texts: dict[int, list[str]] = {}
    choices: list[dict[str, Any]] = []
    usage = g.Usage()
    try:
        async for ev in events:
            if isinstance(ev, g.TextDelta):
                texts[ev.index].append(ev.text)
            elif isinstance(ev, g.Start):
                texts[ev.index] = [echo[ev.index // n]] if echo else []
            elif isinstance(ev, g.Finish):
                text = "".join(texts[ev.index])
                reason = _completion_reason(ev.reason)
                choices.append({"index": ev.index, "text": text, "logprobs": None, "finish_reason": reason})
            elif isinstance(ev, g.Usage):
                usage = ev
    finally:
        await _close(events)
    body = _head("cmpl", "text_completion", model, fingerprint)
    body.update(choices=choices, usage=usage_object(usage))
    return body, usage


class _Chunks:
    """Encodes a stream's events into SSE frames, one call per event (for ``sse.stream``).

    The usage (the last chunk, without choices) is sent only with ``include_usage``; ``usage`` keeps
    the counts either way, for the metrics."""

    def __init__(self, head: dict[str, Any], include_usage: bool) -> None:
        self.head = head
        self.include_usage = include_usage
        self.usage: g.Usage | None = None

    def _usage(self, ev: g.Usage) -> bytes | None:
        self.usage = ev
        return frame({**self.head, "choices": [], "usage": usage_object(ev)}) if self.include_usage else None


class ChatChunks(_Chunks):
    """``chat.completion.chunk`` frames; with ``include_usage`` every other chunk has ``"usage": null``."""

    def __init__(self, model: str, fingerprint: str, include_usage: bool) -> None:
        super().__init__(_head("chatcmpl", "chat.completion.chunk", model, fingerprint), include_usage)
        self._calls: dict[int, int] = {}  # choice index -> tool calls sent so far

    def _chunk(self, index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        if self.include_usage:
            return frame({**self.head, "choices": [choice], "usage": None})
        return frame({**self.head, "choices": [choice]})

    def __call__(self, ev: g.Event) -> bytes | None:
        if isinstance(ev, g.TextDelta):
            return self._chunk(ev.index, {"content": ev.text})
        if isinstance(ev, g.Start):
            return self._chunk(ev.index, {"role": "assistant", "content": ""})
        if isinstance(ev, g.ToolCallDelta):
            position = self._calls.get(ev.index, 0)
            self._calls[ev.index] = position + 1
            return self._chunk(ev.index, {"tool_calls": [{"index": position, **_call_object(ev.call)}]})
        if isinstance(ev, g.Finish):
            return self._chunk(ev.index, {}, ev.reason)
        if isinstance(ev, g.Usage):
            return self._usage(ev)
        return None  # reasoning: Chat Completions has no field for it


class CompletionChunks(_Chunks):
    """Legacy ``text_completion`` frames: ``finish_reason`` null until the end, no ``usage`` key but on
    the usage chunk; ``echo`` as :func:`completion_response`."""

    def __init__(
        self, model: str, fingerprint: str, include_usage: bool, echo: Sequence[str] = (), n: int = 1
    ) -> None:
        super().__init__(_head("cmpl", "text_completion", model, fingerprint), include_usage)
        self.echo = echo
        self.n = n

    def _chunk(self, index: int, text: str, finish_reason: str | None = None) -> bytes:
        choice = {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return frame({**self.head, "choices": [choice]})

    def __call__(self, ev: g.Event) -> bytes | None:
        if isinstance(ev, g.TextDelta):
            return self._chunk(ev.index, ev.text)
        if isinstance(ev, g.Start):
            echo = self.echo[ev.index // self.n] if self.echo else ""
            return self._chunk(ev.index, echo) if echo else None
        if isinstance(ev, g.Finish):
            return self._chunk(ev.index, "", _completion_reason(ev.reason))
        if isinstance(ev, g.Usage):
            return self._usage(ev)
        return None


def embedding_response(result: g.EmbeddingResult, model: str, encoding: str) -> dict[str, Any]:
    data = []
    for i, vector in enumerate(result.vectors):
        values: list[float] | str = vector
        if encoding == "base64":
            values = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": values})
    tokens = result.prompt_tokens
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def model_object(served: g.ServedModel) -> dict[str, Any]:
    return {"id": served.id, "object": "model", "created": served.created, "owned_by": served.owned_by}
