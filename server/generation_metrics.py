"""vLLM's metric names for every generative request, whichever protocol wing served it.

KServe's KEDA autoscaling examples, llm-d and the usual vLLM Grafana dashboards scale and chart LLM
servers on these series (names and ``model_name`` label as vLLM's ``vllm/v1/metrics/loggers.py``
writes them), so an existing ScaledObject works against this server unchanged. They sit beside the
wing's own ``kcr_openai_*`` series, built once per app by the composition root and shared by the
OpenAI and Anthropic wings (a series can be registered only once per registry).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from server.generation import Usage
from server.model import GenerativeModel

#: vLLM's buckets for time to first token and end-to-end latency (seconds).
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)  # fmt: skip
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
               240.0, 480.0, 960.0, 1920.0, 7680.0)  # fmt: skip


def _reader(model: GenerativeModel, which: int) -> Callable[[], float]:
    return lambda: float(model.queue_stats()[which])


class GenerationMetrics:
    def __init__(self, registry: CollectorRegistry, models: Sequence[GenerativeModel]) -> None:
        r = registry
        running = Gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.", ["model_name"],
            registry=r,
        )  # fmt: skip
        waiting = Gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", ["model_name"],
            registry=r,
        )  # fmt: skip
        for model in models:
            running.labels(model.name).set_function(_reader(model, 0))
            waiting.labels(model.name).set_function(_reader(model, 1))
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
            ["model_name"], buckets=TTFT_BUCKETS, registry=r,
        )  # fmt: skip
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
            ["model_name"], buckets=E2E_BUCKETS, registry=r,
        )  # fmt: skip
        # prometheus_client adds ``_total``: vllm:prompt_tokens_total, vllm:generation_tokens_total.
        self.prompt_tokens = Counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", ["model_name"], registry=r
        )
        self.generation_tokens = Counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", ["model_name"], registry=r
        )

    def finished(self, model: str, usage: Usage | None, e2e_seconds: float) -> None:
        """One request done (``model``: a served name, never a client-sent one)."""
        self.e2e.labels(model).observe(e2e_seconds)
        if usage is not None:
            self.prompt_tokens.labels(model).inc(usage.prompt_tokens)
            self.generation_tokens.labels(model).inc(usage.completion_tokens)
