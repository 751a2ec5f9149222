"""Prompt rendering (ChatML, with Qwen2.5-style tools), tool-call parsing and the test markers.

Test markers (deterministic output for tests; real generation stays the default):

* ``[[call:NAME {json-args}]]`` in the last user message (chat) or in the prompt (generate): instead of
  running the model, the stand-in "generates"
  ``<tool_call>\\n{"name": NAME, "arguments": {...}}\\n</tool_call>``.
  With ``tools`` in a chat request that text is parsed into ``message.tool_calls`` exactly like real model
  output; without ``tools`` it is returned as plain content (like Ollama). Several markers → parallel calls.
  The JSON object is optional (``[[call:ping]]`` → ``{}``).
* ``[[say:TEXT]]``: the "generated" text is TEXT (streamed token by token, honours ``num_predict``).

Markers may be combined; the output is the concatenation in order of appearance.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
STOP_STRINGS = ["<|im_start|>", "<|im_end|>"]
TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"

# Go template shown by /api/show (the ChatML + tools template Ollama uses for qwen2.5)
OLLAMA_TEMPLATE = """{{- if .Messages }}
{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{{- range .Tools }}
{"type": "function", "function": {{ .Function }}}
{{- end }}
</tools>

@@CALL_LINE@@
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call>
{{- end }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if .Content }}{{ .Content }}
{{- else if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{ end }}</tool_call>
{{- end }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}
{{- else }}
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ end }}{{ .Response }}{{ if .Response }}<|im_end|>{{ end }}"""
OLLAMA_TEMPLATE = OLLAMA_TEMPLATE.replace(
    "@@CALL_LINE@@",
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:",
)

OLLAMA_PARAMETERS = (
    'stop                           "<|im_start|>"\nstop                           "<|im_end|>"'
)

TOOLS_PREAMBLE = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_POSTAMBLE = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
    "<args-json-object>}\n</tool_call>"
)


def _content(m: dict[str, Any]) -> str:
    c = m.get("content")
    return c if isinstance(c, str) else ("" if c is None else json.dumps(c))


def render_chat(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None) -> str:
    """ChatML prompt for SmolLM2; tools are rendered the way Qwen2.5's template does."""
    msgs = list(messages)
    system = DEFAULT_SYSTEM
    if msgs and msgs[0].get("role") == "system":
        system = _content(msgs[0])
        msgs = msgs[1:]
    if tools:
        system += TOOLS_PREAMBLE
        for t in tools:
            system += "\n" + json.dumps(t, ensure_ascii=False)
        system += TOOLS_POSTAMBLE
    out = [f"<|im_start|>system\n{system}<|im_end|>\n"]
    for i, m in enumerate(msgs):
        role = m.get("role", "user")
        if role == "assistant":
            text = _content(m)
            for tc in m.get("tool_calls") or []:
                fn = tc.get("function") or {}
                call = {"name": fn.get("name"), "arguments": fn.get("arguments") or {}}
                text += (
                    "\n" if text else ""
                ) + f"{TOOL_OPEN}\n{json.dumps(call, ensure_ascii=False)}\n{TOOL_CLOSE}"
            out.append(f"<|im_start|>assistant\n{text}<|im_end|>\n")
        elif role == "tool":
            prev_tool = i > 0 and msgs[i - 1].get("role") == "tool"
            next_tool = i + 1 < len(msgs) and msgs[i + 1].get("role") == "tool"
            if not prev_tool:
                out.append("<|im_start|>user")
            out.append(f"\n<tool_response>\n{_content(m)}\n</tool_response>")
            if not next_tool:
                out.append("<|im_end|>\n")
        else:
            out.append(f"<|im_start|>{role}\n{_content(m)}<|im_end|>\n")
    out.append("<|im_start|>assistant\n")
    return "".join(out)


def render_generate(prompt: str, system: str | None) -> str:
    sys_text = system if system else DEFAULT_SYSTEM
    return (
        f"<|im_start|>system\n{sys_text}<|im_end|>\n"
        f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
    )


# ----------------------------------------------------------------------------------------------- markers
_MARKER = re.compile(r"\[\[(call|say):")


def forced_output(text: str) -> str | None:
    """Text the stand-in should 'generate' for markers in ``text``, or None for real generation."""
    pieces: list[str] = []
    pos = 0
    found = False
    dec = json.JSONDecoder()
    while True:
        m = _MARKER.search(text, pos)
        if not m:
            break
        kind = m.group(1)
        start = m.end()
        if kind == "say":
            end = text.find("]]", start)
            if end < 0:
                break
            pieces.append(text[start:end])
            pos = end + 2
            found = True
            continue
        nm = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*", text[start:])
        if not nm:
            pos = start
            continue
        name = nm.group(1)
        p = start + nm.end()
        args: Any = {}
        if p < len(text) and text[p] == "{":
            try:
                args, p = dec.raw_decode(text, p)
            except json.JSONDecodeError:
                pos = p
                continue
        rest = re.match(r"\s*\]\]", text[p:])
        if not rest:
            pos = p
            continue
        pos = p + rest.end()
        call = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
        pieces.append(f"{TOOL_OPEN}\n{call}\n{TOOL_CLOSE}")
        found = True
    if not found:
        return None
    return "\n".join(p for p in pieces)


# ----------------------------------------------------------------------------------------------- tool parser
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def _prefix_holdback(buf: str, tag: str) -> int:
    """Length of the longest suffix of buf that is a proper prefix of tag."""
    for n in range(min(len(buf), len(tag) - 1), 0, -1):
        if tag.startswith(buf[-n:]):
            return n
    return 0


class ToolCallParser:
    """Incremental parser: feed model text, get ("content", str) and ("tool", call-dict) events.

    With ``enabled=False`` all text passes through as content.
    """

    def __init__(self, enabled: bool, id_factory: Callable[[], str] = new_call_id):
        self.enabled = enabled
        self.buf = ""
        self.in_call = False
        self.index = 0
        self.pending_ws = ""
        self.seen_text = False
        self.seen_tool = False
        self._new_id = id_factory

    def _content(self, text: str, out: list[tuple[str, Any]]) -> None:
        if not text:
            return
        if not self.seen_text and not text.strip():
            self.pending_ws += text  # Ollama holds leading whitespace while it decides
            return
        if self.seen_tool and not text.strip():
            return
        if not self.seen_text:
            text = self.pending_ws + text
            self.pending_ws = ""
            if self.seen_tool:
                text = text.lstrip()
        self.seen_text = True
        out.append(("content", text))

    def _tool(self, raw: str, out: list[tuple[str, Any]]) -> bool:
        try:
            obj = json.loads(raw.strip())
        except json.JSONDecodeError:
            return False
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            return False
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                args = {"value": args}
        if not isinstance(args, dict):
            args = {"value": args}
        call = {
            "id": self._new_id(),
            "function": {"index": self.index, "name": obj["name"], "arguments": args},
        }
        self.index += 1
        self.seen_tool = True
        self.pending_ws = ""
        out.append(("tool", call))
        return True

    def feed(self, text: str) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if not self.enabled:
            if text:
                out.append(("content", text))
            return out
        self.buf += text
        while True:
            if not self.in_call:
                idx = self.buf.find(TOOL_OPEN)
                if idx >= 0:
                    self._content(self.buf[:idx].rstrip(), out)
                    self.buf = self.buf[idx + len(TOOL_OPEN) :]
                    self.in_call = True
                    continue
                hold = _prefix_holdback(self.buf, TOOL_OPEN)
                emit = self.buf[: len(self.buf) - hold]
                # trailing whitespace waits: it is dropped if a tool call follows
                emit_now = emit.rstrip()
                self.buf = emit[len(emit_now) :] + self.buf[len(self.buf) - hold :]
                self._content(emit_now, out)
                return out
            idx = self.buf.find(TOOL_CLOSE)
            if idx < 0:
                return out
            raw = self.buf[:idx]
            self.buf = self.buf[idx + len(TOOL_CLOSE) :]
            self.in_call = False
            if not self._tool(raw, out):
                self._content(TOOL_OPEN + raw + TOOL_CLOSE, out)

    def flush(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if not self.enabled:
            return out
        rest, self.buf = self.buf, ""
        if self.in_call:
            self.in_call = False
            if not self._tool(rest, out):
                self._content(TOOL_OPEN + rest, out)
        else:
            self._content(rest, out)
        if not self.seen_text and not self.seen_tool and self.pending_ws:
            out.append(("content", self.pending_ws))
            self.pending_ws = ""
        return out
