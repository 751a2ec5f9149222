"""OpenAI wire models (chat, legacy completions, embeddings, models, errors); imports only pydantic.

Requests are tolerant (unknown fields ignored, as vLLM does) but typed, so a wrong type is a 400 before
any runtime sees it. The response models document the shapes (the OpenAPI document, the unit tests);
``server.openai.serving`` writes the same JSON from plain dicts, since building a model per stream chunk
is most of what a chunk costs. They omit optional fields that are unset (``tool_calls``, ``usage`` ...)
while keeping the nullable-but-required ones (``content``, ``refusal``, ``logprobs``, ``finish_reason``)
as ``null``: that is what the published OpenAPI schema and the ``openai`` SDK expect.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

#: OpenAI declares these integers ``format: int64``; larger ones are a 400 here, not a surprise upstream.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WireModel(BaseModel):
    """Response base: fields named in ``omit_if_none`` disappear when None, every other one stays.

    The serializers have no return annotation on purpose: pydantic would publish it (``dict``) as the
    response schema in the OpenAPI document instead of the model's fields.
    """

    omit_if_none: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        for key in self.omit_if_none:
            if data.get(key, 0) is None:
                del data[key]
        return data


# --- chat requests ----------------------------------------------------------------------------------


class ImageURL(_Request):
    url: str
    detail: str | None = None


class ContentPart(_Request):
    type: str
    text: str | None = None
    image_url: ImageURL | None = None


class FunctionCall(_Request):
    name: str
    arguments: str = ""


class ToolCall(_Request):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Request):
    role: Literal["developer", "system", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    #: The legacy (pre-tools) spelling of one call.
    function_call: FunctionCall | None = None
    #: A previous answer's reasoning trace, as this server (and vLLM, DeepSeek) returns it.
    reasoning_content: str | None = None


class FunctionDefinition(_Request):
    # Kept as raw JSON on purpose: nested schemas must reach Ollama untouched.
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Request):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedToolChoiceFunction(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"] = "function"
    function: NamedToolChoiceFunction


class JSONSchemaFormat(_Request):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Request):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(_Request):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatCompletionRequest(_Request):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=INT64_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=INT64_MAX)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=1, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    #: Deprecated spellings of ``tools`` / ``tool_choice``, answered in the legacy ``function_call`` shape.
    functions: list[FunctionDefinition] | None = Field(default=None, min_length=1, max_length=128)
    function_call: Literal["none", "auto"] | NamedToolChoiceFunction | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    logit_bias: dict[str, float] | None = None
    user: str | None = None


# --- legacy completions / embeddings requests -------------------------------------------------------


class CompletionRequest(_Request):
    model: str
    prompt: str | list[str] | list[int] | list[list[int]] = "<|endoftext|>"
    suffix: str | None = None
    max_tokens: int | None = Field(default=16, ge=0, le=INT64_MAX)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=1, ge=1, le=128)
    best_of: int | None = Field(default=None, ge=0, le=20)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool | None = False
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    user: str | None = None


class EmbeddingRequest(_Request):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


# --- responses ---------------------------------------------------------------------------------------


class PromptTokensDetails(WireModel):
    cached_tokens: int = 0


class CompletionTokensDetails(WireModel):
    reasoning_tokens: int = 0


class Usage(WireModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
    omit_if_none = frozenset({"prompt_tokens_details", "completion_tokens_details"})

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class ResponseFunctionCall(WireModel):
    name: str
    arguments: str


class ResponseToolCall(WireModel):
    id: str
    type: Literal["function"] = "function"
    function: ResponseFunctionCall


class ResponseMessage(WireModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ResponseToolCall] | None = None
    #: With the legacy ``functions``: the call, instead of ``tool_calls``.
    function_call: ResponseFunctionCall | None = None
    #: The reasoning trace (``reasoning_effort``), where vLLM and DeepSeek clients read it.
    reasoning_content: str | None = None
    annotations: list[Any] = Field(default_factory=list)
    omit_if_none = frozenset({"tool_calls", "function_call", "reasoning_content"})


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class TopLogprob(WireModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChoiceLogprobs(WireModel):
    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


class ChatChoice(WireModel):
    index: int
    message: ResponseMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason


class ChatCompletionResponse(WireModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChatChoice]
    usage: Usage | None = None
    omit_if_none = frozenset({"system_fingerprint", "usage"})


class ToolCallDeltaFunction(WireModel):
    name: str | None = None
    arguments: str | None = None
    omit_if_none = frozenset({"name", "arguments"})


class ToolCallDelta(WireModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: ToolCallDeltaFunction | None = None
    omit_if_none = frozenset({"id", "type", "function"})


class Delta(WireModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    function_call: ToolCallDeltaFunction | None = None
    omit_if_none = frozenset({"role", "content", "reasoning_content", "tool_calls", "function_call"})


class ChunkChoice(WireModel):
    index: int
    delta: Delta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(WireModel):
    """One stream event. ``usage`` is emitted (null) only when the client asked for ``include_usage``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = None
    include_usage: bool = Field(default=False, exclude=True)

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if data.get("system_fingerprint") is None:
            data.pop("system_fingerprint", None)
        if not self.include_usage and data.get("usage") is None:
            data.pop("usage", None)
        return data


class CompletionLogprobs(WireModel):
    """Legacy completions' shape: parallel lists, each top entry a token -> logprob map."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(WireModel):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: Literal["stop", "length", "content_filter"] | None = None


class CompletionResponse(WireModel):
    """Also the shape of each legacy-completions stream chunk (``finish_reason`` null until the end)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[CompletionChoice]
    usage: Usage | None = None
    omit_if_none = frozenset({"system_fingerprint", "usage"})


class EmbeddingData(WireModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(WireModel):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingResponse(WireModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class ModelCard(WireModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "kcr"


class ModelList(WireModel):
    """``GET /v1/models``: OpenAI reads ``data``, KServe v1's model list reads ``models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]
    models: list[str]


class ModelEntry(ModelCard):
    """``GET /v1/models/{id}``: the OpenAI model object plus KServe v1's readiness fields."""

    name: str
    ready: bool = True


class ErrorBody(WireModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(WireModel):
    error: ErrorBody
