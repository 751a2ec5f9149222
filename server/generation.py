"""Protocol-neutral generation: what a generative runtime is asked and what it yields.

Plain dataclasses, no protocol types: the OpenAI wing translates chat, completions and embeddings
requests into these and folds the events back into OpenAI's shapes; another protocol (Anthropic
Messages, the Responses API) is another translation in its own wing, and another backend (llama.cpp's
server, vLLM) another runtime, without either side knowing the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls"]
#: How hard the model should think: "off" (no trace), "on" (the model's default depth), or a level.
#: Each wing maps its own spelling (OpenAI's ``reasoning_effort``, Anthropic's ``thinking``) here.
Reasoning = Literal["off", "on", "low", "medium", "high", "max"]


@dataclass(frozen=True)
class ToolCall:
    #: The backend's id for the call; "" when it gives none (Ollama), and the wing mints one.
    id: str
    name: str
    #: JSON text, as the model wrote it (clients parse it themselves).
    arguments: str


@dataclass(frozen=True)
class Message:
    role: Role
    text: str = ""
    #: base64 image data (no data-URI prefix).
    images: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    #: For ``role == "tool"``: which call this answers, and that tool's name when known.
    tool_call_id: str | None = None
    tool_name: str | None = None
    #: An assistant turn's reasoning trace, sent back so the model sees what it thought before.
    reasoning: str = ""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str | None = None
    #: JSON schema of the arguments, untouched.
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class ToolChoice:
    """``auto`` (the model decides), ``none`` (no tools), ``required`` (some tool), or one ``name``.

    ``required`` and ``named`` are promises: the runtime must answer with a call (of that tool), not
    text, however it gets the backend to do so (constrained decoding for Ollama)."""

    mode: Literal["auto", "none", "required", "named"] = "auto"
    name: str | None = None


@dataclass(frozen=True)
class Sampling:
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: tuple[str, ...] = ()
    #: Sample from the k most likely tokens only (Anthropic's ``top_k``; OpenAI has none).
    top_k: int | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: a chat (``messages``) or raw prompts (``prompts``, legacy completions).

    Each prompt (or the chat) is generated ``n`` times; events carry the choice index
    ``prompt_index * n + i``.
    """

    model: str
    messages: tuple[Message, ...] = ()
    prompts: tuple[str, ...] = ()
    suffix: str | None = None
    n: int = 1
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    sampling: Sampling = field(default_factory=Sampling)
    #: Most tokens to generate per choice; None: the model's default.
    max_tokens: int | None = None
    #: None (free text), "json" (any JSON object) or a JSON schema the output must follow.
    output_format: str | dict[str, Any] | None = None
    #: Top alternatives to report per token (0: only the chosen token's logprob); None: no logprobs.
    logprobs: int | None = None
    #: Whether and how hard to think; None leaves the model's default.
    reasoning: Reasoning | None = None


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int


@dataclass(frozen=True)
class ServedModel:
    """A name clients may send, for model lists."""

    id: str
    created: int = 0
    owned_by: str = "kcr"


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    index: int


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token, its log probability, and the most likely alternatives at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class TextDelta:
    index: int
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class ReasoningDelta:
    index: int
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A whole tool call (Ollama sends each call complete, before its final chunk)."""

    index: int
    call: ToolCall


@dataclass(frozen=True)
class Finish:
    index: int
    reason: FinishReason


@dataclass(frozen=True)
class Usage:
    """Last event of every stream: token counts summed over the choices (prompt counted once)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


Event = Start | TextDelta | ReasoningDelta | ToolCallDelta | Finish | Usage
