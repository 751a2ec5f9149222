"""OpenAI request models → Ollama native payloads, and native chunks → a normalised form.

Pure functions, no I/O: every chat-semantics rule (token limits, forwarded sampling options, JSON
mode, tool ids, roles, content parts) lives here and is unit-tested without a server.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from server.errors import InvalidInput
from server.openai_types import ChatCompletionRequest, ChatMessage, CompletionRequest


class UnsupportedParameter(InvalidInput):
    """A parameter we refuse rather than silently ignore; rendered with ``code: unsupported_parameter``."""

    code = "unsupported_parameter"

    def __init__(self, param: str, why: str = "is not supported by this server") -> None:
        super().__init__(f"'{param}' {why}.", param=param)


_ID_ALPHABET = string.ascii_lowercase + string.digits


def mint_tool_call_id() -> str:
    """OpenAI-style ``call_`` id: the ollama client drops upstream ids, so we always mint our own."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def mint_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


# --- request side ------------------------------------------------------------------------------------


def _text_of(message: ChatMessage, index: int) -> tuple[str, list[str]]:
    """Join text parts with newlines (Ollama would split them into messages); data-URI images apart."""
    content = message.content
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
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
    return "\n".join(texts), images


def native_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """``developer`` → ``system``; tool-call arguments parsed to objects; ``tool_call_id`` → ``tool_name``."""
    names_by_id: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        text, images = _text_of(m, i)
        role = {"developer": "system", "function": "tool"}.get(m.role, m.role)
        msg: dict[str, Any] = {"role": role, "content": text}
        if images:
            msg["images"] = images
        if m.role == "assistant" and m.tool_calls:
            calls = []
            for j, call in enumerate(m.tool_calls):
                try:
                    args = json.loads(call.function.arguments or "{}")
                except ValueError:
                    raise InvalidInput(
                        "Invalid tool call arguments: not valid JSON.",
                        param=f"messages[{i}].tool_calls[{j}].function.arguments",
                    ) from None
                if call.id:
                    names_by_id[call.id] = call.function.name
                native: dict[str, Any] = {
                    "function": {"index": j, "name": call.function.name, "arguments": args}
                }
                if call.id:
                    native["id"] = call.id
                calls.append(native)
            msg["tool_calls"] = calls
        if role == "tool":
            name = names_by_id.get(m.tool_call_id or "") or m.name
            if name:
                msg["tool_name"] = name
            if m.tool_call_id:
                msg["tool_call_id"] = m.tool_call_id
        out.append(msg)
    return out


def _common_options(req: ChatCompletionRequest | CompletionRequest, num_ctx: int | None) -> dict[str, Any]:
    """Only what the client gave: absent fields keep the Modelfile defaults (unlike Ollama's /v1)."""
    options: dict[str, Any] = {}
    for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
        value = getattr(req, key)
        if value is not None:
            options[key] = value
    if req.stop is not None:
        options["stop"] = [req.stop] if isinstance(req.stop, str) else list(req.stop)
    if num_ctx:
        options["num_ctx"] = num_ctx
    if req.logit_bias:
        raise UnsupportedParameter("logit_bias")
    return options


def chat_payload(
    req: ChatCompletionRequest, tag: str, *, keep_alive: float | str | None, num_ctx: int | None
) -> dict[str, Any]:
    """The ``/api/chat`` body (without ``stream``) for one choice."""
    if req.logprobs or req.top_logprobs:
        raise UnsupportedParameter("logprobs")
    options = _common_options(req, num_ctx)
    limit = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if limit is not None:
        options["num_predict"] = limit
    payload: dict[str, Any] = {"model": tag, "messages": native_messages(req.messages), "options": options}
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_object":
        payload["format"] = "json"
    elif fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None or fmt.json_schema.schema_ is None:
            raise InvalidInput("response_format.json_schema.schema is required.", param="response_format")
        payload["format"] = fmt.json_schema.schema_
    tools = [t.model_dump(exclude_none=True) for t in req.tools or []]
    choice = req.tool_choice
    if tools and choice == "none":
        tools = []
    elif tools and choice is not None and not isinstance(choice, str):
        # Best effort: Ollama cannot force a call, but it can only call the named tool.
        tools = [t for t in tools if t["function"]["name"] == choice.function.name]
        if not tools:
            raise InvalidInput(
                f"tool_choice names unknown tool '{choice.function.name}'.", param="tool_choice"
            )
    if tools:
        payload["tools"] = tools
    if keep_alive is not None:
        payload["keep_alive"] = keep_alive
    return payload


def completion_options(req: CompletionRequest, num_ctx: int | None) -> dict[str, Any]:
    if req.logprobs:
        raise UnsupportedParameter("logprobs")
    if req.best_of is not None and req.best_of > (req.n or 1):
        raise UnsupportedParameter("best_of", "greater than n is not supported")
    options = _common_options(req, num_ctx)
    if req.max_tokens is not None and req.max_tokens > 0:
        options["num_predict"] = req.max_tokens
    return options


def completion_prompts(req: CompletionRequest) -> list[str]:
    prompt = req.prompt
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)  # type: ignore[arg-type]
    raise UnsupportedParameter("prompt", "as token ids is not supported; send text")


# --- response side -----------------------------------------------------------------------------------


@dataclass
class NativeToolCall:
    name: str
    arguments: dict[str, Any] | str


@dataclass
class NativeChunk:
    """One native stream line, whichever path (typed client or raw JSON) produced it."""

    text: str = ""
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
        text = ""
        calls: list[NativeToolCall] = []
        if message is not None:
            text = message.get("content") or ""
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                calls.append(NativeToolCall(name=fn.get("name") or "", arguments=fn.get("arguments") or {}))
        elif "response" in data:
            text = data.get("response") or ""
        return cls(
            text=text,
            tool_calls=calls,
            done=bool(data.get("done")),
            done_reason=data.get("done_reason"),
            prompt_tokens=int(data.get("prompt_eval_count") or 0),
            completion_tokens=int(data.get("eval_count") or 0),
            eval_seconds=(data.get("eval_duration") or 0) / 1e9,
        )


def arguments_text(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def finish_reason(done_reason: str | None, saw_tool_call: bool) -> str:
    """Ollama has no ``tool_calls`` done reason and sends calls before the final chunk: remember them."""
    if done_reason == "length":
        return "length"
    return "tool_calls" if saw_tool_call else "stop"
