"""Validate bodies against OpenAI's published OpenAPI document (loaded once, cached as JSON in /tmp).

The document still uses OpenAPI 3.0's ``nullable: true`` in places; JSON Schema ignores it, so it is
rewritten to an explicit ``null`` alternative before validating (see /work/shared/specs/README.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jsonschema

SPEC = Path(os.environ.get("KCR_OPENAI_SPEC", "/work/shared/specs/openai-openapi.yaml"))


def _denull(node: Any) -> Any:
    if isinstance(node, list):
        return [_denull(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _denull(v) for k, v in node.items()}
    if node.pop("nullable", False) is True:
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


@functools.cache
def components() -> dict[str, Any]:
    raw = SPEC.read_bytes()
    cache = Path(tempfile.gettempdir()) / f"kcr-openai-schemas-{hashlib.sha256(raw).hexdigest()[:16]}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(raw, Loader=loader)
    comps = {"components": {"schemas": _denull(doc["components"]["schemas"])}}
    cache.write_text(json.dumps(comps, default=str))
    return comps


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}", **components()})


def validate(name: str, body: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` matches ``components.schemas[name]``."""
    errors = sorted(_validator(name).iter_errors(body), key=lambda e: e.path)
    if errors:
        raise AssertionError(f"{name}: {errors[0].message} at {list(errors[0].absolute_path)}\n{body}")


#: Responses API stream events → their schema in the OpenAPI document.
RESPONSE_EVENTS = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.reasoning_text.delta": "ResponseReasoningTextDeltaEvent",
    "response.reasoning_text.done": "ResponseReasoningTextDoneEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
    "error": "ResponseErrorEvent",
}


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of every SSE event in ``text`` (``[DONE]`` kept as the string)."""
    out: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data is not None:
            out.append((name, data if data == "[DONE]" else json.loads(data)))
    return out


def validate_response_events(text: str) -> list[dict[str, Any]]:
    """Every event of a Responses stream against its schema; the SSE name must equal its ``type``, and
    ``sequence_number`` count up from 0. Returns the events."""
    events = []
    for i, (name, data) in enumerate(sse_events(text)):
        assert isinstance(data, dict) and name == data["type"], (name, data)
        assert data["sequence_number"] == i, data
        validate(RESPONSE_EVENTS[data["type"]], data)
        events.append(data)
    return events
