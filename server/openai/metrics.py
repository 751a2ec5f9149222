"""OpenAI-facade metrics, registered on the app's own Prometheus registry.

Measured in the wing (not the runtime) so every generative backend gets the same series: requests by
route/model/status, time to first token, decode rate, token counters, in-flight/queued gauges read
from the runtime's limiter, and upstream failures by kind. Each figure also goes to vLLM's names
(``server.generation_metrics``, shared with the Anthropic wing), which autoscalers read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from server import errors
from server.generation import Usage
from server.generation_metrics import GenerationMetrics
from server.model import GenerativeModel

_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
_RATE_BUCKETS = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 250, 500)

_UPSTREAM_KINDS: list[tuple[type[errors.KcrError], str]] = [
    (errors.UpstreamUnavailable, "unavailable"),
    (errors.UpstreamTimeout, "timeout"),
    (errors.UpstreamError, "error"),
    (errors.Overloaded, "overloaded"),
]


def upstream_kind(exc: BaseException) -> str | None:
    for cls, kind in _UPSTREAM_KINDS:
        if isinstance(exc, cls):
            return kind
    return None


def _reader(model: GenerativeModel, which: int) -> Callable[[], float]:
    """Reads the model's (in flight, queued) pair when Prometheus scrapes."""
    return lambda: float(model.queue_stats()[which])


class OpenAIMetrics:
    def __init__(
        self, registry: CollectorRegistry, models: Sequence[GenerativeModel], shared: GenerationMetrics
    ) -> None:
        self.shared = shared
        r = registry
        self.requests = Counter(
            "kcr_openai_requests",
            "OpenAI requests by route, model and status",
            ["route", "model", "code"],
            registry=r,
        )
        self.ttft = Histogram(
            "kcr_openai_time_to_first_token_seconds",
            "request arrival to first streamed chunk",
            ["model"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.tokens_per_second = Histogram(
            "kcr_openai_tokens_per_second",
            "completion tokens per second of generation (after the first token when streaming)",
            ["model"],
            buckets=_RATE_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "kcr_openai_prompt_tokens", "prompt tokens (Ollama's count)", ["model"], registry=r
        )
        self.completion_tokens = Counter(
            "kcr_openai_completion_tokens", "completion tokens (Ollama's count)", ["model"], registry=r
        )
        self.upstream_errors = Counter(
            "kcr_openai_upstream_errors",
            "upstream failures and overloads by kind",
            ["model", "kind"],
            registry=r,
        )
        in_flight = Gauge("kcr_openai_in_flight", "requests running upstream", ["model"], registry=r)
        queued = Gauge("kcr_openai_queued", "requests waiting for an upstream slot", ["model"], registry=r)
        for model in models:
            in_flight.labels(model.name).set_function(_reader(model, 0))
            queued.labels(model.name).set_function(_reader(model, 1))

    def first_token(self, model: str, seconds: float, streamed: bool) -> None:
        """The first event arrived (the first upstream chunk): our series counts streams only."""
        if streamed:
            self.ttft.labels(model).observe(seconds)
        self.shared.ttft.labels(model).observe(seconds)

    def record_usage(
        self, model: str, usage: Usage | None, generation_seconds: float, e2e_seconds: float | None = None
    ) -> None:
        if e2e_seconds is not None:
            self.shared.finished(model, usage, e2e_seconds)
        if usage is None:
            return
        self.prompt_tokens.labels(model).inc(usage.prompt_tokens)
        self.completion_tokens.labels(model).inc(usage.completion_tokens)
        if usage.completion_tokens > 0 and generation_seconds > 0:
            self.tokens_per_second.labels(model).observe(usage.completion_tokens / generation_seconds)

    def record_error(self, model: str, exc: BaseException) -> None:
        kind = upstream_kind(exc)
        if kind is not None:
            self.upstream_errors.labels(model, kind).inc()
