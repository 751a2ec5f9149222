"""The Responses API (``POST /v1/responses``), stateless, request side: a ``ResponsesRequest`` → a
neutral ``GenerationRequest`` plus what the response object echoes back (``Plan``).

Read against Ollama's own stateless ``/v1/responses`` (ollama/ollama ``openai/responses.go``, which
the spec folder does not cover): ``instructions`` is a system message first, ``input`` a string or
items (messages with text and image parts, ``function_call`` items merged into the assistant turn
before them, ``function_call_output`` items as tool results, ``reasoning`` items attached to the next
assistant turn), function ``tools``, ``text.format`` json_schema/json_object, ``reasoning.effort``,
``max_output_tokens``, ``temperature``/``top_p``. Unlike Ollama, ``tool_choice`` is honoured
(``required``/named calls are enforced by the runtime), ``top_logprobs`` and the
``message.output_text.logprobs`` include return logprobs, and what a stateless server without
built-in tools cannot do (``previous_response_id``, ``conversation``, ``store: true``,
``background``, ``prompt``, item references, built-in tools, files) is a 400 naming the field rather
than silently dropped (Ollama ignores most of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from server import generation as g
from server.errors import InvalidInput
from server.openai import responses_types as rt
from server.openai.errors import UnsupportedParameter
from server.openai.translate import REASONING, check_arguments, image_data, tool_choice

INCLUDE_LOGPROBS = "message.output_text.logprobs"
INCLUDE_REASONING = "reasoning.encrypted_content"
_INCLUDES = frozenset({INCLUDE_LOGPROBS, INCLUDE_REASONING})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})
_ROLES = {"developer": "system"}


@dataclass(frozen=True)
class Plan:
    """The neutral request, and how the answer is written: ``logprobs`` asked for, at most one call
    (``parallel_tool_calls: false``), the trace also as ``encrypted_content`` (the include), and
    ``echo``: the request fields every response object repeats."""

    request: g.GenerationRequest
    logprobs: bool = False
    one_call: bool = False
    encrypted_reasoning: bool = False
    echo: dict[str, Any] = field(default_factory=dict)


def _refuse_state(req: rt.ResponsesRequest) -> None:
    if req.previous_response_id is not None:
        raise UnsupportedParameter(
            "previous_response_id", "is not supported: this server stores no responses; send the whole input"
        )
    if req.conversation is not None:
        raise UnsupportedParameter("conversation", "is not supported: this server stores no conversations")
    if req.store:
        raise UnsupportedParameter("store", "cannot be true: this server stores no responses")
    if req.background:
        raise UnsupportedParameter("background", "cannot be true: responses are answered in the request")
    if req.prompt is not None:
        raise UnsupportedParameter("prompt", "(stored prompt templates) is not supported")
    for name in req.include or ():
        if name not in _INCLUDES:
            raise UnsupportedParameter("include", f"value '{name}' is not supported")
    if req.text is not None and req.text.verbosity is not None:
        raise UnsupportedParameter("text.verbosity")


def _text(parts: str | list[rt.ContentPart] | None, where: str) -> tuple[str, tuple[str, ...]]:
    """Text parts joined with newlines, data-URI images apart; anything else a 400 naming the part."""
    if parts is None:
        return "", ()
    if isinstance(parts, str):
        return parts, ()
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(parts):
        if part.type in _TEXT_PARTS:
            texts.append(part.text or "")
        elif part.type == "refusal":
            texts.append(part.refusal or "")
        elif part.type == "input_image" and part.image_url:
            images.append(image_data(part.image_url, f"{where}[{j}]"))
        else:
            raise UnsupportedParameter(f"{where}[{j}]", f"of type '{part.type}' is not supported")
    return "\n".join(texts), tuple(images)


def _reasoning_text(item: rt.InputItem, where: str) -> str:
    """A reasoning item sent back: its raw text (``content``), else its summary, else what this server
    returned as ``encrypted_content`` (the plain trace, as Ollama does)."""
    content = item.content if isinstance(item.content, list) else None
    text = _text(content or item.summary or None, where)[0]
    return text or item.encrypted_content or ""


def messages(req: rt.ResponsesRequest) -> tuple[g.Message, ...]:
    out: list[g.Message] = []
    if req.instructions:
        out.append(g.Message("system", req.instructions))
    if req.input is None:
        raise InvalidInput("'input' is required.", param="input")
    if isinstance(req.input, str):
        return (*out, g.Message("user", req.input))
    names: dict[str, str] = {}
    thinking = ""
    for i, item in enumerate(req.input):
        where = f"input[{i}]"
        kind = item.type or ("message" if item.role else None)
        if kind == "message":
            if item.role is None:
                raise InvalidInput("A message item needs a 'role'.", param=f"{where}.role")
            text, images = _text(item.content, f"{where}.content")
            role = cast(g.Role, _ROLES.get(item.role, item.role))
            reasoning = thinking if role == "assistant" else ""
            thinking = "" if role == "assistant" else thinking
            out.append(g.Message(role, text, images, reasoning=reasoning))
        elif kind == "function_call":
            if not item.name or not item.call_id:
                raise InvalidInput("A function_call item needs 'name' and 'call_id'.", param=where)
            arguments = check_arguments(item.arguments or "", f"{where}.arguments")
            call = g.ToolCall(item.call_id, item.name, arguments)
            names[item.call_id] = item.name
            last = out[-1] if out else None
            if last is not None and last.role == "assistant":
                out[-1] = g.Message("assistant", last.text, last.images, (*last.tool_calls, call),
                                    reasoning=last.reasoning or thinking)  # fmt: skip
            else:
                out.append(g.Message("assistant", tool_calls=(call,), reasoning=thinking))
            thinking = ""
        elif kind == "function_call_output":
            if not item.call_id:
                raise InvalidInput("A function_call_output item needs 'call_id'.", param=f"{where}.call_id")
            text, images = _text(item.output, f"{where}.output")
            out.append(
                g.Message("tool", text, images, tool_call_id=item.call_id, tool_name=names.get(item.call_id))
            )
        elif kind == "reasoning":
            thinking = _reasoning_text(item, f"{where}.content")
        elif kind == "item_reference":
            raise UnsupportedParameter(
                f"{where}.type", "'item_reference' needs stored items; send the item itself"
            )
        else:
            raise UnsupportedParameter(f"{where}.type", f"'{kind}' is not supported (function tools only)")
    if thinking:
        out.append(g.Message("assistant", reasoning=thinking))
    return tuple(out)


def _tools(req: rt.ResponsesRequest) -> tuple[tuple[g.Tool, ...], g.ToolChoice]:
    tools: list[g.Tool] = []
    for i, tool in enumerate(req.tools or ()):
        if tool.type != "function":
            raise UnsupportedParameter(
                f"tools[{i}].type", f"'{tool.type}' is not supported (function tools only)"
            )
        if not tool.name:
            raise InvalidInput("A function tool needs a 'name'.", param=f"tools[{i}].name")
        tools.append(g.Tool(tool.name, tool.description, tool.parameters))
    choice = req.tool_choice
    if isinstance(choice, rt.ToolChoiceObject):
        if choice.type != "function" or not choice.name:
            raise UnsupportedParameter("tool_choice", f"of type '{choice.type}' is not supported")
        return tuple(tools), tool_choice(None, choice.name, tools, "tool_choice")
    return tuple(tools), tool_choice(choice, None, tools, "tool_choice")


def _format(req: rt.ResponsesRequest) -> str | dict[str, Any] | None:
    fmt = req.text.format if req.text is not None else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return "json"
    if fmt.schema_ is None:
        raise InvalidInput("text.format.schema is required for json_schema.", param="text.format.schema")
    return fmt.schema_


def _echo(req: rt.ResponsesRequest) -> dict[str, Any]:
    """The request fields the response object repeats (all required by the OpenAPI ``Response``)."""
    tools = [
        {"type": "function", "name": x.name, "description": x.description, "parameters": x.parameters,
         "strict": x.strict}
        for x in req.tools or ()
    ]  # fmt: skip
    choice: Any = req.tool_choice or "auto"
    if isinstance(choice, rt.ToolChoiceObject):
        choice = {"type": "function", "name": choice.name}
    text = {"format": {"type": "text"}}
    if req.text is not None and req.text.format is not None:
        text = {"format": req.text.format.model_dump(by_alias=True, exclude_none=True)}
    reasoning = None
    if req.reasoning is not None:
        reasoning = {"effort": req.reasoning.effort, "summary": req.reasoning.summary}
    echo: dict[str, Any] = {
        "instructions": req.instructions,
        "metadata": req.metadata or {},
        "tools": tools,
        "tool_choice": choice,
        "text": text,
        "reasoning": reasoning,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_logprobs": req.top_logprobs,
        "max_output_tokens": req.max_output_tokens,
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "truncation": req.truncation or "disabled",
        "previous_response_id": None,
        "store": False,
        "background": False,
        "safety_identifier": req.safety_identifier,
        "prompt_cache_key": req.prompt_cache_key,
        "service_tier": "default",
    }
    if req.user is not None:  # a string when present (the schema does not allow null)
        echo["user"] = req.user
    return echo


def plan(req: rt.ResponsesRequest) -> Plan:
    _refuse_state(req)
    chat = messages(req)
    tools, choice = _tools(req)
    include = set(req.include or ())
    logprobs = INCLUDE_LOGPROBS in include or req.top_logprobs is not None
    effort = req.reasoning.effort if req.reasoning is not None else None
    request = g.GenerationRequest(
        model=req.model,
        messages=chat,
        tools=tools,
        tool_choice=choice,
        sampling=g.Sampling(temperature=req.temperature, top_p=req.top_p),
        max_tokens=req.max_output_tokens,
        output_format=_format(req),
        logprobs=(req.top_logprobs or 0) if logprobs else None,
        reasoning=REASONING[effort] if effort else None,
    )
    return Plan(request, logprobs, req.parallel_tool_calls is False, INCLUDE_REASONING in include, _echo(req))
