"""Limits with clear errors, on real processes, and the keep-alive connection surviving each of them.

Every bad request below is sent between two good ones on one HTTP/1.1 connection: the bad one gets
its status and a message in the protocol's own error shape, the good one after it is answered on the
same socket. Limits configured small here: ``--max-body-bytes 200000``, ``KCR_MAX_ELEMENTS=5000``.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.openai.fake_ollama import FakeOllama
from tests.procs import ServerProcess, start_kcr
from tests.reliability.conftest import CHAT_MODEL
from tests.reliability.shapes import kserve_error_problem, openai_error_problem

MAX_BODY = 200_000
MAX_ELEMENTS = 5000
GOOD = ("POST", "/v1/models/iris:predict", {}, json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]}).encode())
HEADER = "inference-header-content-length"


def v2(datatype: str, shape: list[int], data: object) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}
    ).encode()


def v2_binary(datatype: str, shape: list[int], raw: bytes) -> tuple[dict[str, str], bytes]:
    head = json.dumps({"inputs": [{"name": "x", "shape": shape, "datatype": datatype,
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()  # fmt: skip
    return {HEADER: str(len(head)), "content-type": "application/octet-stream"}, head + raw


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


NAN_ROW = np.array([[np.nan, 2.8, 4.8, 1.4]], dtype="<f4").tobytes()
INF_ROW = np.array([[np.inf, 2.8, 4.8, 1.4]], dtype="<f4").tobytes()
NOT_UTF8 = struct.pack("<I", 2) + b"\xff\xfe"

# (id, method, path, headers, body, status, fragment of the error message)
SKLEARN_BAD = [
    ("v1-body-413", "POST", "/v1/models/iris:predict", {}, b" " * (MAX_BODY + 1), 413, "exceeds the limit"),
    ("v2-body-413", "POST", "/v2/models/iris/infer", {}, b" " * (MAX_BODY + 1), 413, "exceeds the limit"),
    ("v1-elements-413", "POST", "/v1/models/iris:predict", {},
     json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]] * 1300}).encode(), 413, "the limit is 5000"),
    ("v2-elements-413", "POST", "/v2/models/iris/infer", {}, v2("FP32", [2000, 4], [1.0] * 8000), 413,
     "the limit is 5000"),
    ("v2-shape-elements-413", "POST", "/v2/models/iris/infer", {}, v2("FP32", [10**9, 4], [1.0]), 413,
     "the limit is 5000"),
    ("v1-records-elements-413", "POST", "/v1/models/iris-pipeline:predict", {},
     json.dumps({"instances": [{"a": 1, "b": 2, "c": 3, "d": 4}] * 1300}).encode(), 413, "the limit is 5000"),
    ("v1-depth", "POST", "/v1/models/iris:predict", {}, b'{"instances":' + nested(2000) + b"}", 400,
     "depth limit exceeded"),
    ("v2-depth", "POST", "/v2/models/iris/infer", {}, v2("FP32", [1], []).replace(b"[]", nested(2000)), 400,
     "Unrecognized request format"),
    ("v2-depth-pydantic", "POST", "/v2/models/iris/infer", {},
     v2("FP32", [1], []).replace(b"[]", nested(300)), 400, "recursion limit exceeded"),
    ("v2-shape-vs-data", "POST", "/v2/models/iris/infer", {}, v2("FP32", [2, 4], [1.0] * 7), 400,
     "cannot reshape array of size 7 into shape (2, 4)"),
    ("v2-binary-size-vs-shape", "POST", "/v2/models/iris/infer", *v2_binary("FP32", [2, 4], NAN_ROW), 400,
     "binary data has 16 bytes but shape [2, 4] of FP32 needs 32"),
    ("v1-nan-literal", "POST", "/v1/models/iris:predict", {}, b'{"instances":[[NaN,2.8,4.8,1.4]]}', 400,
     "Unrecognized request format"),
    ("v1-infinity-literal", "POST", "/v1/models/iris:predict", {}, b'{"instances":[[Infinity,1,1,1]]}', 400,
     "Unrecognized request format"),
    ("v1-overflow", "POST", "/v1/models/iris:predict", {}, b'{"instances":[[1e400,1,1,1]]}', 400,
     "Unrecognized request format"),
    ("v2-nan-literal", "POST", "/v2/models/iris/infer", {},
     v2("FP32", [1, 4], [7, 2, 3, 4]).replace(b"7,", b"NaN,"), 400, "must be finite"),
    ("v2-fp32-overflow", "POST", "/v2/models/iris/infer", {}, v2("FP32", [1, 4], [1e300, 2, 3, 4]), 400,
     "must be finite"),
    ("v2-binary-nan", "POST", "/v2/models/iris/infer", *v2_binary("FP32", [1, 4], NAN_ROW), 400, "NaN"),
    ("v2-binary-inf", "POST", "/v2/models/iris/infer", *v2_binary("FP32", [1, 4], INF_ROW), 400, "infinity"),
    ("v2-bytes-not-utf8", "POST", "/v2/models/iris-pipeline/infer", *v2_binary("BYTES", [1], NOT_UTF8), 400,
     "BYTES element 0 is not valid UTF-8"),
    ("v2-int-overflow", "POST", "/v2/models/iris/infer", {}, v2("INT8", [1, 4], [1000, 1, 1, 1]), 400,
     "does not match datatype INT8"),
    ("headers-431", "POST", "/v1/models/iris:predict", {"x-big": "a" * 70_000}, GOOD[3], 431,
     "exceed the limit of 65536 bytes"),
    ("body-not-utf8", "POST", "/v1/models/iris:predict", {}, b'{"instances":["\xff"]}', 400,
     "Unrecognized request format"),
]  # fmt: skip


@pytest.fixture(scope="module")
def limited(model_root: Path) -> Iterator[ServerProcess]:
    server = start_kcr("serve", "sklearn", "--model-dir", str(model_root), "--max-body-bytes", str(MAX_BODY),
                       env={"KCR_MAX_ELEMENTS": str(MAX_ELEMENTS)})  # fmt: skip
    yield server
    server.stop()


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, headers: dict, body: bytes) -> tuple:
    chunked = not isinstance(body, bytes)
    conn.request(method, path, body, {"content-type": "application/json", **headers}, encode_chunked=chunked)
    response = conn.getresponse()
    return response.status, response.getheader("connection", ""), response.read()


def assert_survives(port: int, bad: tuple, good: tuple = GOOD, shape: str = "kserve") -> bytes:
    """good, bad, good on one connection; returns the bad response's body."""
    method, path, headers, body, status, fragment = bad
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        assert _exchange(conn, *good)[0] == 200
        sock = conn.sock
        got, connection, content = _exchange(conn, method, path, headers, body)
        assert got == status, content[:500]
        error = json.loads(content)
        problem = kserve_error_problem(error) if shape == "kserve" else openai_error_problem(error)
        assert problem is None, problem
        message = error["error"] if shape == "kserve" else error["error"]["message"]
        assert fragment in message, message
        assert connection.lower() != "close"
        assert _exchange(conn, *good)[0] == 200
        assert conn.sock is sock, "the server closed the connection"
        return content
    finally:
        conn.close()


@pytest.mark.parametrize("case", [c[1:] for c in SKLEARN_BAD], ids=[c[0] for c in SKLEARN_BAD])
def test_sklearn_limit_and_keepalive(limited: ServerProcess, case: tuple) -> None:
    assert_survives(limited.port, case)


def test_url_longer_than_64k_is_refused_by_the_http_parser(limited: ServerProcess) -> None:
    """uvicorn/httptools cannot parse a request target over 65,535 bytes: plain-text 400, connection
    closed (before any route runs, so not in KServe's shape). Up to that, long URLs are served."""
    for length, expected in ((60_000, 200), (70_000, 400)):
        path = "/v1/models/iris:predict?q=" + "a" * length
        with socket.create_connection(("127.0.0.1", limited.port), timeout=10) as sock:
            body = GOOD[3]
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )
            head = sock.recv(65536)
            assert head.startswith(f"HTTP/1.1 {expected}".encode()), head[:200]
    # the server is unharmed
    assert_survives(limited.port, SKLEARN_BAD[0][1:])


# --- OpenAI facade ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def facade(fake_ollama: FakeOllama) -> Iterator[ServerProcess]:
    server = start_kcr("serve", "ollama", "--ollama-host", fake_ollama.url, "--model", CHAT_MODEL,
                       "--max-body-bytes", str(MAX_BODY))  # fmt: skip
    yield server
    server.stop()


def _chat(content: str = "hi", **kw: object) -> bytes:
    return json.dumps(
        {"model": CHAT_MODEL, "messages": [{"role": "user", "content": content}], **kw}
    ).encode()


CHAT = "/v1/chat/completions"
OPENAI_BAD = [
    ("chat-413", "POST", CHAT, {}, _chat("x" * MAX_BODY), 413, "exceeds the limit"),
    ("chat-413-chunked", "POST", "/openai" + CHAT, {"transfer-encoding": "chunked"},
     iter([b" " * 100_000] * 3), 413, "exceeds the limit"),
    ("chat-depth", "POST", CHAT, {}, nested(100_000, b""), 400, ""),
    ("chat-nan", "POST", CHAT, {}, _chat(temperature=1.0).replace(b"1.0", b"NaN"), 400, "temperature"),
    ("chat-not-utf8", "POST", CHAT, {}, _chat().replace(b"hi", b"\xff\xfe"), 400, ""),
    ("chat-headers-431", "POST", CHAT, {"x-big": "a" * 70_000}, _chat(), 431, "exceed the limit"),
    ("embeddings-413", "POST", "/v1/embeddings", {}, b" " * (MAX_BODY + 1), 413, "exceeds the limit"),
]  # fmt: skip


@pytest.mark.parametrize("case", [c[1:] for c in OPENAI_BAD], ids=[c[0] for c in OPENAI_BAD])
def test_openai_limit_and_keepalive(facade: ServerProcess, case: tuple) -> None:
    good = ("POST", CHAT, {}, _chat())
    assert_survives(facade.port, case, good=good, shape="openai")
