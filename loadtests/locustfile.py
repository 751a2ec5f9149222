"""Locust suites for kcr: KServe v1 predict, KServe v2 infer and OpenAI chat (streaming).

Run through the headless runner (``python -m loadtests.run``, which evaluates SLOs) or directly::

    locust -f loadtests/locustfile.py --headless -u 10 -r 5 -t 30s --host http://127.0.0.1:8080 V1PredictUser
    locust -f loadtests/locustfile.py --host http://<ingress> --host-header sklearn-iris.default.example.com \
        --model-name sklearn-iris V1PredictUser V2InferUser

User classes (pick them by name on the command line; weights come from ``--v1-weight`` etc.):

* ``V1PredictUser`` - ``POST /v1/models/<model>:predict`` (stats name ``v1 predict``)
* ``V2InferUser`` - ``POST /v2/models/<model>/infer`` (stats name ``v2 infer``)
* ``ChatUser`` - streaming ``POST <chat-path>`` (default ``/v1/chat/completions``). Besides the request
  itself (``chat stream``: time until the last SSE event) it records custom entries with request type
  ``METRIC`` (the "response time" columns hold the value):

  - ``chat TTFT``: ms from sending the request to the first content token;
  - ``chat ITL``: mean inter-token latency of the request, ms, ``(last token - first token) / (tokens - 1)``;
  - ``chat tokens/s``: completion tokens / (last token - request start), per request (end-to-end output
    rate; robust when several tokens arrive in one read). Its content-size column = completion tokens.

  ``METRIC`` rows are not HTTP requests but locust also counts them in its "Aggregated" row: read the
  per-endpoint rows (the runner does).

Every option also has an environment variable (``KCR_HOST_HEADER``, ``KCR_API_KEY``, ``KCR_LOAD_*``).
Locust monkey-patches the process with gevent on import: never import this module from tests or the runner.
"""

from __future__ import annotations

import csv
import itertools
import json
import time
from typing import Any

import requests
from locust import FastHttpUser, User, between, constant, events, task
from locust.env import Environment
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

METRIC = "METRIC"
TTFT_NAME = "chat TTFT"
TOKENS_PER_S_NAME = "chat tokens/s"
ITL_NAME = "chat ITL"
CHAT_NAME = "chat stream"

#: Iris-shaped rows (4 features) the v1/v2 suites cycle through.
IRIS_ROWS: tuple[tuple[float, float, float, float], ...] = (
    (6.8, 2.8, 4.8, 1.4),
    (5.1, 3.5, 1.4, 0.2),
    (6.3, 3.3, 6.0, 2.5),
    (5.7, 2.8, 4.1, 1.3),
    (4.9, 3.0, 1.4, 0.2),
    (7.2, 3.6, 6.1, 2.5),
)

PROMPTS: tuple[str, ...] = (
    "Say hello in one short sentence.",
    "Name a colour.",
    "What is 2 + 2?",
    "Give me one word that rhymes with cat.",
    "Write a haiku about the sea.",
)


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_: Any) -> None:
    g = parser.add_argument_group("kcr load test")
    g.add_argument("--model-name", env_var="KCR_LOAD_MODEL", default="iris", help="v1/v2 model name")
    g.add_argument("--chat-model", env_var="KCR_LOAD_CHAT_MODEL", default="smollm2:135m", help="chat model")
    g.add_argument(
        "--host-header",
        env_var="KCR_HOST_HEADER",
        default="",
        help="Host header to send (KServe ingress routing, e.g. sklearn-iris.default.example.com)",
    )
    g.add_argument(
        "--api-key", env_var="KCR_API_KEY", default="", help="sent as 'Authorization: Bearer <key>'"
    )
    g.add_argument(
        "--batch-size", env_var="KCR_LOAD_BATCH", type=int, default=1, help="rows per v1/v2 request"
    )
    g.add_argument(
        "--max-tokens", env_var="KCR_LOAD_MAX_TOKENS", type=int, default=16, help="chat max_tokens"
    )
    g.add_argument(
        "--prompt", env_var="KCR_LOAD_PROMPT", default="", help="fixed chat prompt (default: rotate)"
    )
    g.add_argument(
        "--chat-path",
        env_var="KCR_LOAD_CHAT_PATH",
        default="/v1/chat/completions",
        help="chat endpoint path (e.g. /openai/v1/chat/completions), or an absolute URL",
    )
    g.add_argument(
        "--chat-timeout", env_var="KCR_LOAD_CHAT_TIMEOUT", type=float, default=120.0, help="seconds per chat"
    )
    g.add_argument(
        "--wait-ms",
        env_var="KCR_LOAD_WAIT_MS",
        type=float,
        default=0.0,
        help="think time between a user's requests, ms (0 = closed loop, as fast as possible)",
    )
    g.add_argument(
        "--v1-weight", env_var="KCR_LOAD_V1_WEIGHT", type=int, default=1, help="mixed traffic weight"
    )
    g.add_argument(
        "--v2-weight", env_var="KCR_LOAD_V2_WEIGHT", type=int, default=1, help="mixed traffic weight"
    )
    g.add_argument(
        "--chat-weight", env_var="KCR_LOAD_CHAT_WEIGHT", type=int, default=1, help="mixed traffic weight"
    )


_ENV: list[Environment] = []


@events.init.add_listener
def _configure(environment: Environment, **_: Any) -> None:
    _ENV[:] = [environment]
    opts = environment.parsed_options
    if opts is None:  # used as a library without command line parsing: keep the class defaults
        return
    wait = constant(0) if opts.wait_ms <= 0 else between(opts.wait_ms / 2000, opts.wait_ms * 1.5 / 1000)
    for cls, weight in (
        (V1PredictUser, opts.v1_weight),
        (V2InferUser, opts.v2_weight),
        (ChatUser, opts.chat_weight),
    ):
        cls.weight = max(1, weight)
        cls.wait_time = wait


@events.quit.add_listener
def _write_final_csv(**_: Any) -> None:
    """Rewrite ``--csv`` files with the final numbers.

    Locust's CSV writer refreshes the files once a second, so without this they can miss the last second of
    the run (and disagree with the console summary and the HTML report).
    """
    if not _ENV or _ENV[0].parsed_options is None or not _ENV[0].parsed_options.csv_prefix:
        return
    env, prefix = _ENV[0], _ENV[0].parsed_options.csv_prefix
    writer = StatsCSV(env, PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("_stats.csv", writer.requests_csv),
        ("_failures.csv", writer.failures_csv),
        ("_exceptions.csv", writer.exceptions_csv),
    ):
        with open(prefix + suffix, "w", newline="") as f:
            write(csv.writer(f))


def _options(user: User) -> Any:
    return user.environment.parsed_options


def _headers(opts: Any) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if opts is not None and opts.host_header:
        headers["Host"] = opts.host_header
    if opts is not None and opts.api_key:
        headers["Authorization"] = f"Bearer {opts.api_key}"
    return headers


class _KServeUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        opts = _options(self)
        self.model = opts.model_name if opts else "iris"
        self.batch = max(1, opts.batch_size if opts else 1)
        self.headers = _headers(opts)
        self.rows = itertools.cycle(IRIS_ROWS)

    def next_batch(self) -> list[list[float]]:
        return [list(next(self.rows)) for _ in range(self.batch)]

    def post(self, path: str, name: str, body: dict[str, Any], key: str) -> None:
        with self.client.post(
            path, data=json.dumps(body), headers=self.headers, name=name, catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
                return
            try:
                out = resp.json()[key]
            except (ValueError, KeyError, TypeError) as e:
                resp.failure(f"bad body ({e!r}): {(resp.text or '')[:200]}")
                return
            if not out:
                resp.failure(f"empty {key}")


class V1PredictUser(_KServeUser):
    """KServe v1: ``{"instances": [[...4 floats...], ...]}``."""

    @task
    def predict(self) -> None:
        batch = self.next_batch()
        self.post(f"/v1/models/{self.model}:predict", "v1 predict", {"instances": batch}, "predictions")


class V2InferUser(_KServeUser):
    """KServe v2 (Open Inference Protocol): one FP32 tensor of shape ``[batch, 4]``."""

    @task
    def infer(self) -> None:
        batch = self.next_batch()
        body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [len(batch), 4],
                    "datatype": "FP32",
                    "data": [x for row in batch for x in row],
                }
            ]
        }
        self.post(f"/v2/models/{self.model}/infer", "v2 infer", body, "outputs")


class ChatUser(User):
    """OpenAI chat completions with ``stream: true``; records TTFT, ITL and tokens/s as METRIC entries.

    Uses a (gevent-patched) ``requests`` session because it hands SSE chunks over as they arrive; the
    request is reported by hand so its time covers the whole stream, not just the response headers.
    """

    wait_time = constant(0)

    def on_start(self) -> None:
        opts = _options(self)
        self.session = requests.Session()
        self.session.headers.update(_headers(opts))
        self.session.headers["Accept"] = "text/event-stream"
        self.chat_model = opts.chat_model if opts else "smollm2:135m"
        self.max_tokens = opts.max_tokens if opts else 16
        path = opts.chat_path if opts else "/v1/chat/completions"
        # An absolute URL sends chat to another server (mixed soak: sklearn and the facade).
        self.url = path if path.startswith(("http://", "https://")) else (self.host or "").rstrip("/") + path
        self.timeout = opts.chat_timeout if opts else 120.0
        self.prompts = itertools.cycle([opts.prompt] if opts and opts.prompt else PROMPTS)

    def on_stop(self) -> None:
        self.session.close()

    def _fire(
        self, name: str, request_type: str, value: float, length: int = 0, exc: Exception | None = None
    ):
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            response_time=value,
            response_length=length,
            exception=exc,
            context={},
            response=None,
        )

    @task
    def chat(self) -> None:
        body = {
            "model": self.chat_model,
            "messages": [{"role": "user", "content": next(self.prompts)}],
            "max_tokens": self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        start = time.perf_counter()
        first = last = None
        chunks = 0
        usage_tokens: int | None = None
        size = 0
        done = False
        error: Exception | None = None
        try:
            with self.session.post(self.url, json=body, stream=True, timeout=self.timeout) as resp:
                if resp.status_code != 200:
                    raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:200]}")
                for raw in resp.iter_lines(chunk_size=None):
                    size += len(raw) + 1
                    if not raw.startswith(b"data:"):
                        continue
                    data = raw[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        break
                    event = json.loads(data)
                    if "error" in event:
                        raise RuntimeError(f"stream error: {json.dumps(event['error'])[:200]}")
                    if event.get("usage"):
                        usage_tokens = event["usage"].get("completion_tokens")
                    for choice in event.get("choices") or ():
                        delta = choice.get("delta") or {}
                        if delta.get("content") or delta.get("tool_calls"):
                            now = time.perf_counter()
                            first = first or now
                            last = now
                            chunks += 1
            if not done:
                raise RuntimeError("stream ended without [DONE]")
            if first is None:
                raise RuntimeError("stream carried no tokens")
        except Exception as e:  # reported as a locust failure; GreenletExit (run stopped) is not caught
            error = e
        total_ms = (time.perf_counter() - start) * 1000
        self._fire(CHAT_NAME, "POST", total_ms, size, error)
        if error is not None or first is None or last is None:
            return
        tokens = usage_tokens or chunks
        self._fire(TTFT_NAME, METRIC, (first - start) * 1000, tokens)
        self._fire(TOKENS_PER_S_NAME, METRIC, tokens / (last - start), tokens)
        if tokens > 1:
            self._fire(ITL_NAME, METRIC, (last - first) * 1000 / (tokens - 1), tokens)
