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
