"""Neutral generation requests → Ollama native payloads, and native chunks → a normalised form.

Pure functions, no I/O, no protocol: every Ollama-specific rule lives here and is unit-tested
without a server. Sampling options are sent only when the client gave them (absent ones keep the
Modelfile's defaults, unlike Ollama's own /v1), ``num_ctx`` and ``keep_alive`` come from the
runtime's options, an output format is Ollama's ``format``, and tool calls in the history carry
their arguments as objects. Ollama cannot force a tool call: ``tool_choice`` ``none`` sends no tools
and a named tool sends only that one (best effort); ``required`` sends them all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.errors import InvalidInput
from server.generation import FinishReason, GenerationRequest, Message, Sampling, Tool, ToolChoice

# --- request side ------------------------------------------------------------------------------------


def native_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        msg: dict[str, Any] = {"role": m.role, "content": m.text}
        if m.images:
            msg["images"] = list(m.images)
        if m.tool_calls:
            calls = []
            for j, call in enumerate(m.tool_calls):
                native: dict[str, Any] = {
                    "function": {
                        "index": j,
                        "name": call.name,
                        "arguments": json.loads(call.arguments or "{}"),
                    }
                }
                if call.id:
                    native["id"] = call.id
                calls.append(native)
            msg["tool_calls"] = calls
        if m.tool_name:
            msg["tool_name"] = m.tool_name
        if m.tool_call_id:
            msg["tool_call_id"] = m.tool_call_id
        out.append(msg)
    return out


def options(sampling: Sampling, max_tokens: int | None, num_ctx: int | None) -> dict[str, Any]:
    """Only what the client gave: absent fields keep the Modelfile defaults."""
    opts: dict[str, Any] = {}
    for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
        value = getattr(sampling, key)
        if value is not None:
            opts[key] = value
    if sampling.stop:
        opts["stop"] = list(sampling.stop)
    if num_ctx:
        opts["num_ctx"] = num_ctx
    if max_tokens is not None:
        opts["num_predict"] = max_tokens
    return opts


def native_tools(tools: Sequence[Tool], choice: ToolChoice) -> list[dict[str, Any]]:
    """Schemas untouched (nested ones too); filtered by ``choice`` as far as Ollama allows."""
    if choice.mode == "none":
        return []
    if choice.mode == "named":
        tools = [x for x in tools if x.name == choice.name]
    out = []
    for x in tools:
        function: dict[str, Any] = {"name": x.name}
        if x.description is not None:
            function["description"] = x.description
        if x.parameters is not None:
            function["parameters"] = x.parameters
        out.append({"type": "function", "function": function})
    return out


def _refuse_unsupported(request: GenerationRequest) -> None:
    if request.logprobs is not None:
        raise InvalidInput("Log probabilities are not supported by the Ollama runtime.", param="logprobs")


def _common(
    request: GenerationRequest, tag: str, keep_alive: float | str | None, num_ctx: int | None
) -> dict[str, Any]:
    _refuse_unsupported(request)
    payload: dict[str, Any] = {"model": tag}
    payload["options"] = options(request.sampling, request.max_tokens, num_ctx)
    if request.output_format is not None:
        payload["format"] = request.output_format
    if request.reasoning is not None:
        payload["think"] = request.reasoning
    if keep_alive is not None:
        payload["keep_alive"] = keep_alive
    return payload


def chat_payload(
    request: GenerationRequest, tag: str, *, keep_alive: float | str | None, num_ctx: int | None
) -> dict[str, Any]:
    """The ``/api/chat`` body (without ``stream``) for one choice."""
    payload = _common(request, tag, keep_alive, num_ctx)
    payload["messages"] = native_messages(request.messages)
    tools = native_tools(request.tools, request.tool_choice)
    if tools:
        payload["tools"] = tools
    return payload


def generate_payloads(
    request: GenerationRequest, tag: str, *, keep_alive: float | str | None, num_ctx: int | None
) -> list[dict[str, Any]]:
    """One ``/api/generate`` body (without ``stream``) per prompt."""
    common = _common(request, tag, keep_alive, num_ctx)
    suffix = {"suffix": request.suffix} if request.suffix is not None else {}
    return [{**common, "prompt": prompt, **suffix} for prompt in request.prompts]


# --- response side -----------------------------------------------------------------------------------


@dataclass
class NativeToolCall:
    name: str
    arguments: dict[str, Any] | str


@dataclass
class NativeChunk:
    """One native stream line, whichever path (typed client or raw JSON) produced it."""

    text: str = ""
    thinking: str = ""
    tool_calls: list[NativeToolCall] = field(default_factory=list)
    done: bool = False
    done_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    eval_seconds: float = 0.0

    @classmethod
    def from_mapping(cls, data: Any) -> NativeChunk:
        """Accepts a raw dict or an ollama pydantic response (both index like mappings)."""
        message = data.get("message") if "message" in data else None
        text = thinking = ""
        calls: list[NativeToolCall] = []
        if message is not None:
            text = message.get("content") or ""
            thinking = message.get("thinking") or ""
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                calls.append(NativeToolCall(name=fn.get("name") or "", arguments=fn.get("arguments") or {}))
        elif "response" in data:
            text = data.get("response") or ""
            thinking = data.get("thinking") or ""
        if not isinstance(text, str) or not isinstance(thinking, str):
            raise ValueError("content that is not a string")
        return cls(
            text=text,
            thinking=thinking,
            tool_calls=calls,
            done=bool(data.get("done")),
            done_reason=data.get("done_reason"),
            prompt_tokens=int(data.get("prompt_eval_count") or 0),
            completion_tokens=int(data.get("eval_count") or 0),
            eval_seconds=(data.get("eval_duration") or 0) / 1e9,
        )


def arguments_text(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def finish_reason(done_reason: str | None, saw_tool_call: bool) -> FinishReason:
    """Ollama has no ``tool_calls`` done reason and sends calls before the final chunk: remember them."""
    if done_reason == "length":
        return "length"
    return "tool_calls" if saw_tool_call else "stop"
