"""Neutral generation requests → Ollama native payloads, and native chunks → a normalised form.

Pure functions, no I/O, no protocol: every Ollama-specific rule lives here and is unit-tested
without a server. Sampling options are sent only when the client gave them (absent ones keep the
Modelfile's defaults, unlike Ollama's own /v1), ``num_ctx`` and ``keep_alive`` come from the
runtime's options, an output format is Ollama's ``format``, and tool calls in the history carry
their arguments as objects. Ollama ignores ``tool_choice`` (ollama#17921), so a forced call is made
with constrained decoding instead: ``format`` becomes the named tool's argument schema, or for
``required`` a schema of ``{"name": <one of the tools>, "arguments": <its schema>}`` alternatives, and
the JSON that comes back is turned into the call (``ForcedCall``). ``none`` sends no tools.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from server.errors import InvalidInput
from server.generation import (
    FinishReason,
    GenerationRequest,
    Message,
    Reasoning,
    Sampling,
    TokenLogprob,
    Tool,
    ToolChoice,
)

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
        if m.reasoning:
            msg["thinking"] = m.reasoning
        out.append(msg)
    return out


def options(sampling: Sampling, max_tokens: int | None, num_ctx: int | None) -> dict[str, Any]:
    """Only what the client gave: absent fields keep the Modelfile defaults."""
    opts: dict[str, Any] = {}
    for key in ("temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty"):
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


@dataclass(frozen=True)
class ForcedCall:
    """A tool call obtained by constrained decoding: ``schema`` is sent as ``format``, and the JSON
    the model wrote is the call. ``name`` is the tool when it was named; None when the output names
    it (``{"name": ..., "arguments": ...}``, for ``required``)."""

    schema: dict[str, Any]
    name: str | None = None

    def parse(self, text: str) -> tuple[str, str] | None:
        """(name, arguments as JSON text), or None when the output is not a complete call (cut short)."""
        try:
            value = json.loads(text)
        except ValueError:
            return None
        if self.name is not None:
            return (self.name, text.strip()) if isinstance(value, dict) else None
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            return None
        arguments = value.get("arguments")
        if not isinstance(arguments, dict):
            return None
        return value["name"], json.dumps(arguments, ensure_ascii=False)


def _arguments_schema(tool: Tool) -> dict[str, Any]:
    return tool.parameters if tool.parameters else {"type": "object"}


def forced_call(tools: Sequence[Tool], choice: ToolChoice) -> ForcedCall | None:
    """How to force the call ``choice`` asks for, or None when the model may answer in text."""
    if choice.mode == "named":
        tool = next((x for x in tools if x.name == choice.name), None)
        if tool is None:
            raise InvalidInput(
                f"tool_choice names '{choice.name}', which is not among the tools.", "tool_choice"
            )
        return ForcedCall(_arguments_schema(tool), tool.name)
    if choice.mode != "required":
        return None
    if not tools:
        raise InvalidInput("tool_choice 'required' needs at least one tool.", param="tool_choice")
    alternatives = [
        {
            "type": "object",
            "properties": {"name": {"const": x.name}, "arguments": _arguments_schema(x)},
            "required": ["name", "arguments"],
        }
        for x in tools
    ]
    return ForcedCall(alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives})


#: Ollama's ``think``: false, true, or a level (``max`` since 0.12; ``think`` levels per api/types.go).
_THINK: dict[Reasoning, bool | str] = {"off": False, "on": True}


def _common(
    request: GenerationRequest, tag: str, keep_alive: float | str | None, num_ctx: int | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": tag}
    payload["options"] = options(request.sampling, request.max_tokens, num_ctx)
    if request.output_format is not None:
        payload["format"] = request.output_format
    if request.reasoning is not None:
        payload["think"] = _THINK.get(request.reasoning, request.reasoning)
    if request.logprobs is not None:
        # Ollama >= 0.12.11: per-token logprobs on every chunk, ``top_logprobs`` alternatives (0-20).
        payload["logprobs"] = True
        if request.logprobs:
            payload["top_logprobs"] = request.logprobs
    if keep_alive is not None:
        payload["keep_alive"] = keep_alive
    return payload


def chat_payload(
    request: GenerationRequest, tag: str, *, keep_alive: float | str | None, num_ctx: int | None
) -> tuple[dict[str, Any], ForcedCall | None]:
    """The ``/api/chat`` body (without ``stream``) for one choice, and the forced call it asks for.

    A forced call's schema replaces any ``output_format``: the answer is a call, so there is no text
    for a text format to shape."""
    payload = _common(request, tag, keep_alive, num_ctx)
    payload["messages"] = native_messages(request.messages)
    tools = native_tools(request.tools, request.tool_choice)
    if tools:
        payload["tools"] = tools
    forced = forced_call(request.tools, request.tool_choice)
    if forced is not None:
        payload["format"] = forced.schema
    return payload, forced


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
    logprobs: tuple[TokenLogprob, ...] = ()

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
            logprobs=_logprobs(data.get("logprobs")),
        )


def _logprobs(items: Any) -> tuple[TokenLogprob, ...]:
    """Ollama's chunk-level ``logprobs``: ``[{token, logprob, bytes?, top_logprobs: [{token, logprob}]}]``
    (api/types.go ``Logprob``; on the chunk, not in ``message``)."""
    if not items:
        return ()
    out = []
    for item in items:
        top = tuple(
            (str(t.get("token", "")), float(t.get("logprob", 0.0))) for t in item.get("top_logprobs") or ()
        )
        out.append(TokenLogprob(str(item.get("token", "")), float(item.get("logprob", 0.0)), top))
    return tuple(out)


def arguments_text(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def finish_reason(done_reason: str | None, saw_tool_call: bool) -> FinishReason:
    """Ollama has no ``tool_calls`` done reason and sends calls before the final chunk: remember them."""
    if done_reason == "length":
        return "length"
    return "tool_calls" if saw_tool_call else "stop"
