"""The one status table of the OpenAI wing and its renderer."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from server import errors
from server.openai.errors import UnsupportedParameter, error_object, render
from server.openai.types import ChatCompletionRequest


@pytest.mark.parametrize(
    ("exc", "status", "etype", "code", "retry_after"),
    [
        (errors.Unauthorized(), 401, "invalid_request_error", "invalid_api_key", None),
        (errors.PayloadTooLarge("big"), 413, "invalid_request_error", "payload_too_large", None),
        (errors.UnsupportedEncoding("br"), 415, "invalid_request_error", "unsupported_encoding", None),
        (errors.InvalidInput("bad", param="x"), 400, "invalid_request_error", None, None),
        (UnsupportedParameter("logit_bias"), 400, "invalid_request_error", "unsupported_parameter", None),
        (errors.ModelNotFound("m"), 404, "invalid_request_error", "model_not_found", None),
        (errors.ModelNotReady("m"), 503, "service_unavailable_error", "model_not_ready", b"5"),
        (errors.ServerNotReady(), 503, "service_unavailable_error", "server_not_ready", None),
        (
            errors.Overloaded("full", retry_after=2),
            503,
            "service_unavailable_error",
            "server_is_overloaded",
            b"2",
        ),
        (errors.UpstreamUnavailable("down"), 503, "service_unavailable_error", "upstream_unavailable", b"1"),
        (errors.UpstreamTimeout("slow"), 504, "timeout_error", "upstream_timeout", None),
        (errors.UpstreamError("odd"), 502, "api_error", "upstream_error", None),
        (errors.UpstreamError("odd", status=500), 500, "api_error", "upstream_error", None),
        (errors.NotSupported("no"), 501, "invalid_request_error", "not_supported", None),
        (errors.InferenceFailed("boom"), 500, "server_error", None, None),
    ],
)
def test_status_table(
    exc: errors.KcrError, status: int, etype: str, code: str | None, retry_after: bytes | None
) -> None:
    got_status, body, headers = error_object(exc)
    assert (got_status, body["type"], body["code"]) == (status, etype, code)
    assert dict(headers).get(b"retry-after") == retry_after
    assert set(body) == {"message", "type", "param", "code"}


def test_messages() -> None:
    assert error_object(errors.ModelNotFound("gpt-4o"))[1]["message"] == (
        "The model `gpt-4o` does not exist or you do not have access to it."
    )
    assert error_object(UnsupportedParameter("best_of", "greater than n is not supported"))[1] == {
        "message": "'best_of' greater than n is not supported.",
        "type": "invalid_request_error",
        "param": "best_of",
        "code": "unsupported_parameter",
    }


def test_messages_quoting_the_request_are_bounded() -> None:
    message = error_object(errors.ModelNotFound("x" * 100_000))[1]["message"]
    assert len(message) < 1100 and message.endswith("more characters)")


def test_unknown_exceptions_are_a_plain_500() -> None:
    status, body, headers = error_object(RuntimeError("secret detail"))
    assert status == 500 and headers == []
    assert body == {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_validation_errors_are_400() -> None:
    with pytest.raises(ValidationError) as err:
        ChatCompletionRequest.model_validate({"model": "m", "messages": [], "n": 0})
    status, body, _ = error_object(err.value)
    assert status == 400 and body["param"] == "messages"
    assert body["message"] == (
        "Invalid request: messages: List should have at least 1 item after validation, not 0; "
        "n: Input should be greater than or equal to 1"
    )


def test_render() -> None:
    response = render(None, errors.UpstreamUnavailable("Ollama is unreachable.", retry_after=2))
    assert response.status == 503
    assert (b"retry-after", b"2") in response.headers and (
        b"content-type",
        b"application/json",
    ) in response.headers
    assert orjson.loads(response.body)["error"]["message"] == "Ollama is unreachable."
