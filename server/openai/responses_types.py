"""Request models of the Responses API (``POST /v1/responses``); imports only pydantic.

Tolerant like the chat models (unknown fields ignored), typed so a wrong type is a 400 before any
runtime sees it. Items and parts keep ``type`` as a plain string: ``server.openai.responses`` refuses
the kinds this stateless server cannot serve (built-in tools, stored items, files) by name, with the
index of the item, instead of a pydantic union error that lists every alternative. The response side
is written as plain dicts in ``server.openai.responses_stream`` and validated against OpenAI's
published OpenAPI document in the tests.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from server.openai.types import INT64_MAX


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Request):
    """``input_text``/``output_text``/``summary_text``/``reasoning_text``/``refusal``/``input_image``/..."""

    type: str
    text: str | None = None
    refusal: str | None = None
    image_url: str | None = None
    file_id: str | None = None


class InputItem(_Request):
    """A message (``type`` ``message`` or absent, as the SDK's ``EasyInputMessage``), a
    ``function_call``, a ``function_call_output``, or a ``reasoning`` item sent back."""

    type: str | None = None
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | list[ContentPart] | None = None
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | list[ContentPart] | None = None
    summary: list[ContentPart] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class FunctionTool(_Request):
    type: str = "function"
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolChoiceObject(_Request):
    type: str
    name: str | None = None


class TextFormat(_Request):
    type: Literal["text", "json_schema", "json_object"]
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextParam(_Request):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningParam(_Request):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    #: A summary of the trace is asked for; this server returns the trace itself (``reasoning_text``).
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class StreamOptions(_Request):
    include_obfuscation: bool | None = None


class ResponsesRequest(_Request):
    model: str
    input: str | list[InputItem] | None = None
    instructions: str | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceObject | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    reasoning: ReasoningParam | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=INT64_MAX)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    include: list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    truncation: Literal["auto", "disabled"] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)
    # Refused with a 400 naming them (this server keeps no state and has no built-in tools):
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    store: bool | None = None
    background: bool | None = None
    prompt: dict[str, Any] | None = None
