"""Request bodies are read as FastAPI's routes read them (the messages were recorded from FastAPI 0.165
routes over the same models; ``tests/openai/test_chat.py`` also compares against a live one)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.errors import InvalidInput
from server.openai.body import PARSE_ERROR, decode
from server.openai.errors import error_object
from server.openai.types import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

OK = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
NOT_AN_OBJECT = "Invalid request: Input should be a valid dictionary or object to extract fields from"


def error(model: type, raw: bytes, content_type: str | None = "application/json") -> tuple[str, Any]:
    with pytest.raises(InvalidInput) as err:
        decode(model, raw, content_type)
    status, body, _ = error_object(err.value)
    assert status == 400 and body["type"] == "invalid_request_error" and body["code"] is None
    return body["message"], body["param"]


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/x+json"],
)
def test_json_bodies(content_type: str | None) -> None:
    assert decode(ChatCompletionRequest, json.dumps(OK).encode(), content_type).model == "m"


@pytest.mark.parametrize("content_type", ["text/plain", "json", "application/x-www-form-urlencoded", "a/b/c"])
def test_other_content_types_are_refused(content_type: str) -> None:
    assert error(ChatCompletionRequest, json.dumps(OK).encode(), content_type) == (NOT_AN_OBJECT, None)


@pytest.mark.parametrize(
    ("raw", "message", "param"),
    [
        (b"", "Invalid request: Field required", None),
        (b"{nope", PARSE_ERROR, None),
        (b"[1]", NOT_AN_OBJECT, None),
        (b'"x"', NOT_AN_OBJECT, None),
        (b"null", NOT_AN_OBJECT, None),
        (b"\xff\xfe{", "There was an error parsing the body", None),
        (
            b'{"model": "m", "messages": [], "seed": NaN}',
            "Invalid request: messages: List should have at least 1 item after validation, not 0; "
            "seed: Input should be a finite number",
            "messages",
        ),
        (
            b'{"model": 1}',
            "Invalid request: model: Input should be a valid string; messages: Field required",
            "model",
        ),
        (
            json.dumps({**OK, "n": 0}).encode("utf-16"),
            "Invalid request: n: Input should be greater than or equal to 1",
            "n",
        ),
        (
            json.dumps({**OK, "max_tokens": 2**64}).encode(),
            "Invalid request: max_tokens: Input should be less than or equal to 9223372036854775807",
            "max_tokens",
        ),
    ],
)
def test_chat_errors(raw: bytes, message: str, param: str | None) -> None:
    assert error(ChatCompletionRequest, raw) == (message, param)


def test_at_most_five_problems_are_listed() -> None:
    raw = json.dumps({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
                      "tool_choice": "x", "max_tokens": 0, "top_p": 3, "n": 500}).encode()  # fmt: skip
    message, param = error(ChatCompletionRequest, raw)
    assert param == "max_tokens"
    assert message == (
        "Invalid request: max_tokens: Input should be greater than or equal to 1; "
        "top_p: Input should be less than or equal to 1; n: Input should be less than or equal to 128; "
        "tool_choice.literal['none','auto','required']: Input should be 'none', 'auto' or 'required'; "
        "tool_choice.NamedToolChoice: Input should be a valid dictionary or object to extract fields from"
    )


def test_union_errors_name_the_branch() -> None:
    message, param = error(EmbeddingRequest, b'{"model": "m", "input": [1.5]}')
    assert param == "input.str" and message.startswith("Invalid request: input.str: Input should be a valid")
    message, param = error(CompletionRequest, b'{"model": "m", "prompt": [[1, "a"]]}')
    assert param == "prompt.str" and "prompt.list[list[int]].0.1" in message


def test_non_strict_json_is_still_read() -> None:
    """What the standard library accepts and orjson does not (a lone surrogate) validates as before."""
    raw = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": "\\ud800"}'
    assert decode(ChatCompletionRequest, raw, "application/json").stop == "\ud800"
