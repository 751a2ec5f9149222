"""A tiny stdlib HTTP server standing in for a KServe ingress: records Host/Authorization headers and answers
v1 predict, v2 infer and streaming chat (chunked SSE, a fixed delay before the first token) without a model.

It lets the load-test suites be checked for header handling and TTFT measurement in a couple of seconds."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FIRST_TOKEN_DELAY = 0.05
TOKEN_INTERVAL = 0.005


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: StubIngress

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.record(self.path, self.headers.get("Host"), self.headers.get("Authorization"))
        if self.path.endswith(":predict"):
            self._json(200, {"predictions": [1] * len(body["instances"])})
        elif self.path.endswith("/infer"):
            n = body["inputs"][0]["shape"][0]
            self._json(
                200, {"outputs": [{"name": "output-0", "shape": [n], "datatype": "INT64", "data": [1] * n}]}
            )
        elif self.path.endswith("/chat/completions"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            n = int(body.get("max_tokens") or 4)

            def event(obj: Any) -> None:
                self._chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

            event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
            time.sleep(FIRST_TOKEN_DELAY)
            for i in range(n):
                if i:
                    time.sleep(TOKEN_INTERVAL)
                event({"choices": [{"index": 0, "delta": {"content": f" t{i}"}}]})
            event(
                {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5}}
            )
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")
        else:
            self._json(404, {"error": "not found"})


class StubIngress(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.hosts: Counter[str | None] = Counter()
        self.auths: Counter[str | None] = Counter()
        self.paths: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Locust drops keep-alive connections when the run ends: not worth a traceback."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def record(self, path: str, host: str | None, auth: str | None) -> None:
        with self.lock:
            self.paths[path] += 1
            self.hosts[host] += 1
            self.auths[auth] += 1

    def __enter__(self) -> StubIngress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
