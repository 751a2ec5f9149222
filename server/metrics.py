"""Per-app Prometheus registry.

KServe's four histograms keep their names, label and default buckets so existing dashboards (e.g.
Grafana 17969) work unchanged; the request counter, in-flight gauge and load time are additions.
A registry per app (not the global default) lets tests run several apps in one process.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import choose_encoder

_MAX_CHILDREN = 4096


class Metrics:
    def __init__(self) -> None:
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        r = self.registry
        self.preprocess = Histogram(
            "request_preprocess_seconds", "pre-process request latency", ["model_name"], registry=r
        )
        self.predict = Histogram(
            "request_predict_seconds", "predict request latency", ["model_name"], registry=r
        )
        self.postprocess = Histogram(
            "request_postprocess_seconds", "post-process request latency", ["model_name"], registry=r
        )
        self.explain = Histogram(
            "request_explain_seconds", "explain request latency", ["model_name"], registry=r
        )
        self.requests = Counter(
            "kcr_requests",
            "HTTP requests by model, protocol and status code",
            ["model_name", "protocol", "code"],
            registry=r,
        )
        self.in_flight = Gauge("kcr_requests_in_flight", "HTTP requests being served", registry=r)
        self.model_load = Gauge(
            "kcr_model_load_seconds", "time taken to load each model", ["model_name"], registry=r
        )
        self.model_ready = Gauge(
            "kcr_model_ready", "1 when the model is loaded and answering", ["model_name"], registry=r
        )
        self.batch_size = Histogram(
            "kcr_batch_size",
            "requests merged into one predict call by the micro-batcher",
            ["model_name"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, kept: ``labels()`` costs ~1.5 µs (a lock, a tuple, checks),
        and a small predict pays it three times. Children are never removed here; the cache is
        bounded for label values that come from clients (callers map unknown names to one value)."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*values)
            if len(self._children) < _MAX_CHILDREN:
                self._children[key] = child
        return child

    def render(self, accept: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept or "")
        if encoder is generate_latest:
            content_type = CONTENT_TYPE_LATEST
        return encoder(self.registry), content_type
