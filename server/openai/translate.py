"""OpenAI requests (chat, legacy completions, embeddings) → neutral ``server.generation`` requests.

Every OpenAI-specific request rule lives here, so a backend never sees one: ``developer`` is a
system message, text parts are joined and images must be base64 data URIs, an assistant's tool-call
arguments must be JSON, ``tool_choice`` must name a tool that was sent (and is then enforced by the
runtime), the legacy ``functions``/``function_call`` are tools under their old names,
``response_format`` is the output format, ``max_completion_tokens`` wins over ``max_tokens``,
``reasoning_effort`` is the neutral reasoning level and ``logprobs``/``top_logprobs`` the number of
alternatives. What this server cannot do (``logit_bias``, ``best_of`` > ``n``, prompts as token ids,
prompt logprobs with ``echo``) is refused with a 400 naming the parameter: nothing accepted is
silently ignored. (``server.openai.responses`` does the same for the Responses API.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from server import generation as g
from server.errors import InvalidInput
from server.openai import types as t
from server.openai.errors import UnsupportedParameter

_ROLES = {"developer": "system", "function": "tool"}

#: OpenAI's ``reasoning_effort`` → the neutral level. As Ollama's own /v1 layer maps it
#: (openai/openai.go): ``minimal`` is its lowest level, ``xhigh`` its highest.
REASONING: dict[str, g.Reasoning] = {
    "none": "off",
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "max",
    "max": "max",
}

#: What langchain's ``OpenAIEmbeddings`` (and other tiktoken users) must change to send text.
TOKEN_IDS_FIX = (
    "as token ids is not supported; send text. With langchain's OpenAIEmbeddings, pass "
    "check_embedding_ctx_length=False (by default it tokenizes the input with tiktoken and sends the ids)"
)


def image_data(url: str, param: str) -> str:
    """The base64 payload of a data URI (Ollama takes images inline only)."""
    if not url.startswith("data:") or ";base64," not in url:
        raise InvalidInput("Only base64 data URIs are supported for images.", param=param)
    return url.split(";base64,", 1)[1]


def _content(message: t.ChatMessage, index: int) -> tuple[str, tuple[str, ...]]:
    """Text parts joined with newlines (Ollama would split them into messages); data-URI images apart."""
    content = message.content
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content, ()
    texts: list[str] = []
    images: list[str] = []
    where = f"messages[{index}].content"
    for part in content:
        if part.type == "text":
            texts.append(part.text or "")
        elif part.type == "image_url" and part.image_url is not None:
            images.append(image_data(part.image_url.url, where))
        else:
            raise InvalidInput(f"Unsupported content part type '{part.type}'.", param=where)
    return "\n".join(texts), tuple(images)


def check_arguments(arguments: str, param: str) -> str:
    """A history call's arguments, which Ollama needs as an object: JSON text or a 400."""
    arguments = arguments or "{}"
    try:
        json.loads(arguments)
    except ValueError:
        raise InvalidInput("Invalid tool call arguments: not valid JSON.", param=param) from None
    return arguments


def messages(chat: Sequence[t.ChatMessage]) -> tuple[g.Message, ...]:
    """Roles mapped, tool-call arguments checked, each tool result named after the call it answers."""
    names_by_id: dict[str, str] = {}
    out: list[g.Message] = []
    for i, m in enumerate(chat):
        text, images = _content(m, i)
        role = cast(g.Role, _ROLES.get(m.role, m.role))
        calls: list[g.ToolCall] = []
        if m.role == "assistant":
            for j, call in enumerate(m.tool_calls or ()):
                where = f"messages[{i}].tool_calls[{j}].function.arguments"
                arguments = check_arguments(call.function.arguments, where)
                if call.id:
                    names_by_id[call.id] = call.function.name
                calls.append(g.ToolCall(call.id or "", call.function.name, arguments))
            if m.function_call is not None:
                where = f"messages[{i}].function_call.arguments"
                arguments = check_arguments(m.function_call.arguments, where)
                calls.append(g.ToolCall("", m.function_call.name, arguments))
        tool_name = tool_call_id = None
        if role == "tool":
            tool_name = names_by_id.get(m.tool_call_id or "") or m.name or None
            tool_call_id = m.tool_call_id or None
        reasoning = (m.reasoning_content or "") if m.role == "assistant" else ""
        out.append(g.Message(role, text, images, tuple(calls), tool_call_id, tool_name, reasoning))
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


def tool_choice(choice: str | None, name: str | None, tools: Sequence[g.Tool], param: str) -> g.ToolChoice:
    """``auto``/``none``/``required`` or a named tool, checked against what was sent: an enforced
    choice needs tools to enforce (OpenAI answers these with a 400 too)."""
    if name is not None:
        if all(x.name != name for x in tools):
            raise InvalidInput(f"{param} names unknown tool '{name}'.", param=param)
        return g.ToolChoice("named", name)
    if choice in (None, "auto"):
        return g.ToolChoice()
    if choice == "required" and not tools:
        raise InvalidInput(f"{param} 'required' needs at least one tool.", param=param)
    return g.ToolChoice(cast(Any, choice))


def _tools(req: t.ChatCompletionRequest) -> tuple[tuple[g.Tool, ...], g.ToolChoice]:
    if req.functions is not None:
        if req.tools is not None:
            raise InvalidInput("Send 'tools' or the deprecated 'functions', not both.", param="functions")
        tools = tuple(g.Tool(f.name, f.description, f.parameters) for f in req.functions)
        legacy = req.function_call
        if isinstance(legacy, t.NamedToolChoiceFunction):
            return tools, tool_choice(None, legacy.name, tools, "function_call")
        return tools, tool_choice(legacy, None, tools, "function_call")
    if req.function_call is not None:
        raise InvalidInput("'function_call' needs 'functions'.", param="function_call")
    tools = tuple(
        g.Tool(x.function.name, x.function.description, x.function.parameters) for x in req.tools or ()
    )
    choice = req.tool_choice
    if isinstance(choice, t.NamedToolChoice):
        return tools, tool_choice(None, choice.function.name, tools, "tool_choice")
    return tools, tool_choice(choice, None, tools, "tool_choice")


def _chat_logprobs(req: t.ChatCompletionRequest) -> int | None:
    if req.top_logprobs is not None and not req.logprobs:
        raise InvalidInput("'top_logprobs' needs 'logprobs': true.", param="top_logprobs")
    return (req.top_logprobs or 0) if req.logprobs else None


def chat_request(req: t.ChatCompletionRequest) -> g.GenerationRequest:
    sampling = _sampling(req)
    chat = messages(req.messages)
    output_format = _output_format(req.response_format)
    tools, choice = _tools(req)
    limit = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    return g.GenerationRequest(
        model=req.model,
        messages=chat,
        n=req.n or 1,
        tools=tools,
        tool_choice=choice,
        sampling=sampling,
        max_tokens=limit,
        output_format=output_format,
        logprobs=_chat_logprobs(req),
        reasoning=REASONING[req.reasoning_effort] if req.reasoning_effort else None,
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
    if req.logprobs is not None and req.echo:
        raise UnsupportedParameter("logprobs", "with echo is not supported (no prompt logprobs)")
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
        logprobs=req.logprobs,
    )


def embedding_request(req: t.EmbeddingRequest) -> g.EmbeddingRequest:
    inputs = req.input
    if not isinstance(inputs, str) and not all(isinstance(i, str) for i in inputs):
        raise UnsupportedParameter("input", TOKEN_IDS_FIX)
    if not inputs:
        raise InvalidInput("'input' must not be empty.", param="input")
    texts = (inputs,) if isinstance(inputs, str) else tuple(cast(list[str], inputs))
    return g.EmbeddingRequest(model=req.model, inputs=texts, dimensions=req.dimensions)
