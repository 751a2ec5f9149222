"""Neutral ``server.generation`` events → OpenAI chat, legacy-completion and embedding responses
(whole, or as stream chunks). The request half is ``server.openai.translate``.

A chat answer's shape follows what the client asked (``Shape``): logprobs in OpenAI's
``{"content": [...], "refusal": null}``, the reasoning trace as ``reasoning_content`` (where vLLM and
DeepSeek clients read it), only the first call with ``parallel_tool_calls: false``, and the legacy
``function_call`` / ``finish_reason: "function_call"`` when the request used ``functions``.

Responses are plain dicts written with orjson: a stream chunk costs one small dict, where a
pydantic model per chunk cost several times more (``server.openai.types`` keeps the models that
document these shapes, and the unit tests hold the two equal).
"""

from __future__ import annotations

import base64
import secrets
import string
import struct
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from server import generation as g
from server.openai.sse import frame

_ID_ALPHABET = string.ascii_lowercase + string.digits


def mint_id(prefix: str, sep: str = "-") -> str:
    return f"{prefix}{sep}{secrets.token_hex(12)}"


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


async def close(events: AsyncIterator[g.Event]) -> None:
    """Ends the backend's stream (its slot, its upstream request) when a fold stops early."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def usage_object(usage: g.Usage) -> dict[str, int]:
    p, c = usage.prompt_tokens, usage.completion_tokens
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _call_object(call: g.ToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.arguments}
    return {"id": call.id or mint_call_id(), "type": "function", "function": function}


def token_logprobs(items: Sequence[g.TokenLogprob]) -> list[dict[str, Any]]:
    """OpenAI's per-token entries; ``bytes`` are the token's UTF-8 (Ollama's text pieces)."""
    return [
        {
            "token": lp.token,
            "logprob": lp.logprob,
            "bytes": list(lp.token.encode()),
            "top_logprobs": [{"token": k, "logprob": v, "bytes": list(k.encode())} for k, v in lp.top],
        }
        for lp in items
    ]


@dataclass(frozen=True)
class Shape:
    """How a chat answer is written: ``logprobs`` were asked for; ``one_call``: at most one call per
    choice (``parallel_tool_calls: false``, or the legacy form); ``legacy``: ``functions`` was used."""

    logprobs: bool = False
    one_call: bool = False
    legacy: bool = False

    def reason(self, reason: g.FinishReason) -> str:
        return "function_call" if self.legacy and reason == "tool_calls" else reason


def _completion_reason(reason: g.FinishReason) -> str:
    return "length" if reason == "length" else "stop"


class _Choice:
    """One chat choice being folded: text, reasoning, calls and logprobs."""

    __slots__ = ("calls", "logprobs", "reasoning", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.logprobs: list[g.TokenLogprob] = []


async def chat_response(
    events: AsyncIterator[g.Event], model: str, fingerprint: str, shape: Shape = Shape()
) -> tuple[dict[str, Any], g.Usage]:
    """A whole ``chat.completion`` from the events, and the usage (for the metrics)."""
    folds: dict[int, _Choice] = {}
    choices: list[dict[str, Any]] = []
    usage = g.Usage()
    try:
        async for ev in events:
            if isinstance(ev, g.TextDelta):
                fold = folds.setdefault(ev.index, _Choice())
                fold.texts.append(ev.text)
                fold.logprobs.extend(ev.logprobs)
            elif isinstance(ev, g.ReasoningDelta):
                folds.setdefault(ev.index, _Choice()).reasoning.append(ev.text)
            elif isinstance(ev, g.ToolCallDelta):
                fold = folds.setdefault(ev.index, _Choice())
                if not (shape.one_call and fold.calls):
                    fold.calls.append(_call_object(ev.call))
            elif isinstance(ev, g.Finish):
                choices.append(_chat_choice(ev, folds.pop(ev.index, _Choice()), shape))
            elif isinstance(ev, g.Usage):
                usage = ev
    finally:
        await close(events)
    body = _head("chatcmpl", "chat.completion", model, fingerprint)
    body.update(choices=choices, usage=usage_object(usage))
    return body, usage


def _chat_choice(ev: g.Finish, fold: _Choice, shape: Shape) -> dict[str, Any]:
    text = "".join(fold.texts)
    calls = fold.calls
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
    }
    if calls and shape.legacy:
        message["function_call"] = calls[0]["function"]
    elif calls:
        message["tool_calls"] = calls
    if fold.reasoning:
        message["reasoning_content"] = "".join(fold.reasoning)
    message["annotations"] = []
    logprobs = {"content": token_logprobs(fold.logprobs), "refusal": None} if shape.logprobs else None
    return {
        "index": ev.index,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": shape.reason(ev.reason),
    }


def completion_logprobs(items: Sequence[g.TokenLogprob], offset: int) -> dict[str, Any]:
    """Legacy completions' parallel lists; ``text_offset`` counts characters from ``offset``."""
    offsets = []
    for lp in items:
        offsets.append(offset)
        offset += len(lp.token)
    return {
        "tokens": [lp.token for lp in items],
        "token_logprobs": [lp.logprob for lp in items],
        "top_logprobs": [dict(lp.top) for lp in items],
        "text_offset": offsets,
    }


async def completion_response(
    events: AsyncIterator[g.Event],
    model: str,
    fingerprint: str,
    echo: Sequence[str] = (),
    n: int = 1,
    logprobs: bool = False,
) -> tuple[dict[str, Any], g.Usage]:
    """A whole ``text_completion``; ``echo``: the prompts, when the client asked to have them back
    (choice ``i`` answers prompt ``i // n``)."""
    texts: dict[int, list[str]] = {}
    lps: dict[int, list[g.TokenLogprob]] = {}
    choices: list[dict[str, Any]] = []
    usage = g.Usage()
    try:
        async for ev in events:
            if isinstance(ev, g.TextDelta):
                texts[ev.index].append(ev.text)
                lps[ev.index].extend(ev.logprobs)
            elif isinstance(ev, g.Start):
                texts[ev.index] = [echo[ev.index // n]] if echo else []
                lps[ev.index] = []
            elif isinstance(ev, g.Finish):
                text = "".join(texts[ev.index])
                reason = _completion_reason(ev.reason)
                entry = completion_logprobs(lps[ev.index], 0) if logprobs else None
                choices.append({"index": ev.index, "text": text, "logprobs": entry, "finish_reason": reason})
            elif isinstance(ev, g.Usage):
                usage = ev
    finally:
        await close(events)
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

    def __init__(self, model: str, fingerprint: str, include_usage: bool, shape: Shape = Shape()) -> None:
        super().__init__(_head("chatcmpl", "chat.completion.chunk", model, fingerprint), include_usage)
        self.shape = shape
        self._calls: dict[int, int] = {}  # choice index -> tool calls sent so far

    def _chunk(
        self,
        index: int,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        logprobs: dict[str, Any] | None = None,
    ) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}
        if self.include_usage:
            return frame({**self.head, "choices": [choice], "usage": None})
        return frame({**self.head, "choices": [choice]})

    def __call__(self, ev: g.Event) -> bytes | None:
        if isinstance(ev, g.TextDelta):
            if self.shape.logprobs:
                entries = {"content": token_logprobs(ev.logprobs), "refusal": None}
                return self._chunk(ev.index, {"content": ev.text}, logprobs=entries)
            return self._chunk(ev.index, {"content": ev.text})
        if isinstance(ev, g.ReasoningDelta):
            return self._chunk(ev.index, {"reasoning_content": ev.text})
        if isinstance(ev, g.Start):
            return self._chunk(ev.index, {"role": "assistant", "content": ""})
        if isinstance(ev, g.ToolCallDelta):
            position = self._calls.get(ev.index, 0)
            if position and self.shape.one_call:
                return None
            self._calls[ev.index] = position + 1
            call = _call_object(ev.call)
            if self.shape.legacy:
                return self._chunk(ev.index, {"function_call": call["function"]})
            return self._chunk(ev.index, {"tool_calls": [{"index": position, **call}]})
        if isinstance(ev, g.Finish):
            return self._chunk(ev.index, {}, self.shape.reason(ev.reason))
        if isinstance(ev, g.Usage):
            return self._usage(ev)
        return None


class CompletionChunks(_Chunks):
    """Legacy ``text_completion`` frames: ``finish_reason`` null until the end, no ``usage`` key but on
    the usage chunk; ``echo`` as :func:`completion_response`."""

    def __init__(
        self,
        model: str,
        fingerprint: str,
        include_usage: bool,
        echo: Sequence[str] = (),
        n: int = 1,
        logprobs: bool = False,
    ) -> None:
        super().__init__(_head("cmpl", "text_completion", model, fingerprint), include_usage)
        self.echo = echo
        self.n = n
        self.logprobs = logprobs
        self._offsets: dict[int, int] = {}

    def _chunk(
        self, index: int, text: str, finish_reason: str | None = None, lps: dict[str, Any] | None = None
    ) -> bytes:
        choice = {"index": index, "text": text, "logprobs": lps, "finish_reason": finish_reason}
        return frame({**self.head, "choices": [choice]})

    def __call__(self, ev: g.Event) -> bytes | None:
        if isinstance(ev, g.TextDelta):
            if not self.logprobs:
                return self._chunk(ev.index, ev.text)
            offset = self._offsets.get(ev.index, 0)
            self._offsets[ev.index] = offset + len(ev.text)
            return self._chunk(ev.index, ev.text, lps=completion_logprobs(ev.logprobs, offset))
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
