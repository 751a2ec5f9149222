"""Anthropic Messages requests → neutral ``server.generation`` requests.

As Ollama's own ``/v1/messages`` layer reads them (ollama/ollama ``anthropic/anthropic.go``,
``FromMessagesRequest``): ``system`` (a string or text blocks) is a system message; each message's
text blocks are joined, base64 images go inline, ``tool_use`` blocks are the assistant's calls and
``tool_result`` blocks become tool messages (before the user's own text, naming the call they
answer); ``thinking`` blocks are the assistant's earlier trace; ``max_tokens`` is the limit and
``stop_sequences``/``temperature``/``top_p``/``top_k`` the sampling. Unlike Ollama, ``tool_choice``
is honoured (``any`` and ``tool`` are enforced by the runtime, ``none`` sends no tools,
``disable_parallel_tool_use`` keeps one call) and ``thinking.budget_tokens`` picks a level; what
this server cannot serve (server tools, URL images, documents, redacted thinking) is a 400 naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import cast

from server import generation as g
from server.anthropic import types as at
from server.errors import InvalidInput

#: ``thinking.budget_tokens`` → a reasoning level (Ollama has levels, not budgets).
_BUDGETS: tuple[tuple[int, g.Reasoning], ...] = ((4096, "low"), (16384, "medium"))


@dataclass(frozen=True)
class Plan:
    request: g.GenerationRequest
    #: ``tool_choice.disable_parallel_tool_use``: at most one tool_use block.
    one_call: bool = False


def _refuse(where: str, what: str) -> InvalidInput:
    return InvalidInput(f"{what} is not supported by this server.", param=where)


def _image(block: at.Block, where: str) -> str:
    source = block.source
    if source is None or source.type != "base64" or not source.data:
        raise _refuse(where, "An image that is not base64 data (a URL or a file)")
    return source.data


def _result_text(content: str | list[at.Block] | None, where: str) -> tuple[str, tuple[str, ...]]:
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content, ()
    texts, images = [], []
    for j, block in enumerate(content):
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "image":
            images.append(_image(block, f"{where}[{j}]"))
        else:
            raise _refuse(f"{where}[{j}].type", f"A '{block.type}' block in a tool_result")
    return "\n".join(texts), tuple(images)


def _system(system: str | list[at.Block] | None) -> list[g.Message]:
    if system is None:
        return []
    if isinstance(system, str):
        return [g.Message("system", system)] if system else []
    for j, block in enumerate(system):
        if block.type != "text":
            raise _refuse(f"system[{j}].type", f"A '{block.type}' block in the system prompt")
    text = "\n".join(block.text or "" for block in system)
    return [g.Message("system", text)] if text else []


def messages(req: at.MessagesRequest) -> tuple[g.Message, ...]:
    out = _system(req.system)
    names: dict[str, str] = {}
    for i, m in enumerate(req.messages):
        role = cast(g.Role, m.role)
        if isinstance(m.content, str):
            out.append(g.Message(role, m.content))
            continue
        texts: list[str] = []
        images: list[str] = []
        calls: list[g.ToolCall] = []
        results: list[g.Message] = []
        thinking = ""
        for j, block in enumerate(m.content):
            where = f"messages[{i}].content[{j}]"
            if block.type == "text":
                texts.append(block.text or "")
            elif block.type == "image":
                images.append(_image(block, where))
            elif block.type == "tool_use" and m.role == "assistant":
                if not block.id or not block.name:
                    raise InvalidInput("A tool_use block needs 'id' and 'name'.", param=where)
                names[block.id] = block.name
                calls.append(
                    g.ToolCall(block.id, block.name, json.dumps(block.input or {}, ensure_ascii=False))
                )
            elif block.type == "tool_result" and m.role == "user":
                text, result_images = _result_text(block.content, f"{where}.content")
                if block.is_error:
                    text = f"Error: {text}"
                call_id = block.tool_use_id
                results.append(g.Message("tool", text, result_images, tool_call_id=call_id,
                                         tool_name=names.get(call_id or "")))  # fmt: skip
            elif block.type == "thinking" and m.role == "assistant":
                thinking += block.thinking or ""
            else:
                raise _refuse(f"{where}.type", f"A '{block.type}' block in a {m.role} message")
        out.extend(results)  # tool results first, then the user's own text (as Ollama orders them)
        if texts or images or calls or thinking or not results:
            out.append(g.Message(role, "\n".join(texts), tuple(images), tuple(calls), reasoning=thinking))
    return tuple(out)


def _tools(req: at.MessagesRequest) -> tuple[tuple[g.Tool, ...], g.ToolChoice]:
    tools = []
    for i, tool in enumerate(req.tools or ()):
        if tool.type not in (None, "custom"):
            raise _refuse(f"tools[{i}].type", f"The server tool '{tool.type}'")
        tools.append(g.Tool(tool.name, tool.description, tool.input_schema))
    choice = req.tool_choice
    if choice is None or choice.type == "auto":
        return tuple(tools), g.ToolChoice()
    if choice.type == "none":
        return tuple(tools), g.ToolChoice("none")
    if not tools:
        raise InvalidInput(f"tool_choice '{choice.type}' needs tools.", param="tool_choice")
    if choice.type == "any":
        return tuple(tools), g.ToolChoice("required")
    if not choice.name or all(x.name != choice.name for x in tools):
        raise InvalidInput(f"tool_choice names unknown tool '{choice.name}'.", param="tool_choice.name")
    return tuple(tools), g.ToolChoice("named", choice.name)


def _reasoning(thinking: at.Thinking | None) -> g.Reasoning | None:
    if thinking is None:
        return None
    if thinking.type == "disabled":
        return "off"
    if thinking.type == "adaptive" or thinking.budget_tokens is None:
        return "on"
    return next((level for limit, level in _BUDGETS if thinking.budget_tokens < limit), "high")


def plan(req: at.MessagesRequest) -> Plan:
    tools, choice = _tools(req)
    sampling = g.Sampling(
        temperature=req.temperature, top_p=req.top_p, top_k=req.top_k, stop=tuple(req.stop_sequences or ())
    )
    request = g.GenerationRequest(
        model=req.model,
        messages=messages(req),
        tools=tools,
        tool_choice=choice,
        sampling=sampling,
        max_tokens=req.max_tokens,
        reasoning=_reasoning(req.thinking),
    )
    return Plan(request, bool(req.tool_choice and req.tool_choice.disable_parallel_tool_use))
