"""The docs stay true to the tree: the README is a front page (at most 150 lines), every relative
link in README.md and docs/*.md reaches a file (and its ``#anchor`` a heading), every ``--flag`` the
docs give ``kcr`` exists in its parser, and docs/performance.md is what ``loadtests/report.py``
makes of ``loadtests/results/``.

Which flags are kcr's: a ``--flag`` in backticks or a code block is checked when it follows ``kcr``,
``serve``, ``python -m server`` or a kcr image name (``docker run ... kcr-sklearn:... --flag``: the
container's arguments), or when it stands alone (a bare ``--flag`` in prose, a YAML ``- --flag`` in
an InferenceService's ``args``). Flags of other commands (``make``, ``pytest``, ``docker``, ``curl``,
``python -m loadtests...``) are theirs, so a command line is judged by its first word.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from runtimes import RUNTIMES, load_runtime
from server.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 150

#: Bare flags in prose that belong to another tool; each says whose. Keep it short: prefer writing
#: the command (``docker build --build-arg ...``), which the checker then attributes by itself.
OTHER_TOOLS_FLAGS: set[str] = set()

_FENCE = re.compile(r"^\s*(```|~~~)")
_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
_KCR_IMAGE = re.compile(r"kcr-(sklearn|ollama-proxy)(:\S*)?$")
#: Words that separate commands on one line: the next word is a command again.
_SEPARATORS = {"|", "||", "&&", ";", "&", "$(", "sudo", "exec", "time", "env"}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose_and_code(text: str) -> Iterator[tuple[bool, int, str]]:
    """(in a code block, line number, line) for each line."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        yield fenced, number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for fenced, _, line in prose_and_code(path.read_text()):
        match = None if fenced else _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return frozenset(out)


def links(path: Path) -> Iterator[tuple[int, str]]:
    for fenced, number, line in prose_and_code(path.read_text()):
        if fenced:
            continue
        outside_code = _SPAN.sub("", line)
        for match in _LINK.finditer(outside_code):
            yield number, match.group(1)


def code_texts(path: Path) -> Iterator[tuple[int, str]]:
    """Every command-like text of a file: inline code spans, and code-block lines (continuations
    joined, ``#`` comments split off as text of their own, YAML list markers dropped)."""
    pending, start = "", 0
    for fenced, number, line in prose_and_code(path.read_text()):
        if not fenced:
            for match in _SPAN.finditer(line):
                yield number, match.group(2)
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full, pending = pending + line, ""
        command, _, comment = full.partition(" #")
        if full.lstrip().startswith("#"):
            command, comment = "", full.lstrip()[1:]
        yield start, re.sub(r"^\s*-\s+(?=--)", "", command)
        if comment.strip():
            yield start, comment


def kcr_flags(text: str) -> Iterator[str]:
    """The flags in ``text`` that are given to kcr (see the module docstring)."""
    words = text.split()
    owner = "kcr" if words and words[0].startswith("--") else None  # a bare flag: kcr's
    at_command = owner is None
    for i, word in enumerate(words):
        if word in _SEPARATORS:
            at_command = True
            continue
        if at_command and not word.startswith("-") and "=" not in word.split("/")[0]:
            python_m_server = word.endswith(("python", "python3")) and words[i + 1 : i + 3] == [
                "-m",
                "server",
            ]
            owner = "kcr" if word.endswith("kcr") or word == "serve" or python_m_server else word
            at_command = False
        elif owner in ("docker", "podman") and _KCR_IMAGE.search(word):
            owner = "kcr"  # what follows the image name is the container's command line: kcr's
        elif owner == "kcr":
            yield from _FLAG.findall(word)


@cache
def parser_flags() -> frozenset[str]:
    flags = set()
    for name in RUNTIMES:
        flags |= set(build_parser(load_runtime(name))._option_string_actions)
    return frozenset(flags)


def test_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; at most {README_MAX_LINES}"


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for number, target in links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{_rel(doc)}:{number}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{_rel(doc)}:{number}: {target} (no heading #{anchor} in {_rel(dest)})")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_kcr_flag_named_exists(doc: Path) -> None:
    known = parser_flags() | OTHER_TOOLS_FLAGS
    unknown = [
        f"{_rel(doc)}:{number}: {flag} in `{text.strip()}`"
        for number, text in code_texts(doc)
        for flag in kcr_flags(text)
        if flag.split("=")[0] not in known
    ]
    assert not unknown, "flags kcr does not have (python -m server --help):\n" + "\n".join(unknown)


def test_the_checker_sees_what_it_must() -> None:
    """The flag attribution itself, on the shapes the docs use."""
    assert list(kcr_flags("--no-fast-path")) == ["--no-fast-path"]
    assert list(kcr_flags("--max-batch-size 1 --max-batch-wait-ms 2")) == [
        "--max-batch-size",
        "--max-batch-wait-ms",
    ]
    assert list(kcr_flags("kcr serve sklearn --model-dir /m --model_name=x")) == [
        "--model-dir",
        "--model_name",
    ]
    assert list(kcr_flags(".venv/bin/python -m server ollama --help")) == ["--help"]
    image_args = "docker run --rm -p 8080:8080 kind.local/kcr-sklearn:0.1.0-iris --enable-grpc"
    assert list(kcr_flags(image_args)) == ["--enable-grpc"]
    assert list(kcr_flags("make images IMAGE_PLATFORMS=native && kcr --grpc-port 1")) == ["--grpc-port"]
    assert not list(kcr_flags("python -m loadtests.run --host x --p95-ms 50"))
    assert not list(kcr_flags("curl -s --data x localhost:8080"))
    assert slug("gRPC (Open Inference Protocol)") == "grpc-open-inference-protocol"
    assert slug("`--max-batch-size` and `KCR_X`") == "--max-batch-size-and-kcr_x"


def test_performance_page_is_generated_from_the_results() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "loadtests" / "report.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr + result.stdout
