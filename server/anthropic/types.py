"""Anthropic Messages request models (``POST /v1/messages``); imports only pydantic.

Tolerant like the OpenAI models (unknown fields ignored), typed so a wrong type is a 400 before any
runtime sees it. Blocks keep ``type`` as a plain string: ``server.anthropic.translate`` refuses the
kinds it cannot serve by name and index. Shapes as the ``anthropic`` SDK sends them and as Ollama's
own ``/v1/messages`` layer reads them (ollama/ollama ``anthropic/anthropic.go``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageSource(_Request):
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class Block(_Request):
    """A content block: text, image, tool_use, tool_result, thinking (and kinds refused by name)."""

    type: str
    text: str | None = None
    source: ImageSource | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[Block] | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None


class MessageParam(_Request):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Tool(_Request):
    #: Absent or ``custom``: a client tool; server tools (``web_search_*``, ``bash_*``...) are refused.
    type: str | None = None
    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None


class ToolChoice(_Request):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Thinking(_Request):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(default=None, ge=1)


class MessagesRequest(_Request):
    model: str
    max_tokens: int = Field(ge=1, le=2**63 - 1)
    messages: list[MessageParam] = Field(min_length=1, max_length=10_000)
    system: str | list[Block] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stream: bool | None = False
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    metadata: dict[str, Any] | None = None
