"""``Metrics.child``: the labelled child is kept (``labels()`` costs ~1.5 µs, paid three times by a
small predict), counts land where ``labels()`` would put them, and the cache stays bounded."""

from __future__ import annotations

from server import metrics as metrics_module
from server.metrics import Metrics


def test_child_is_kept_and_counts_as_labels_would() -> None:
    m = Metrics()
    first = m.child(m.requests, "iris", "v1", "200")
    assert m.child(m.requests, "iris", "v1", "200") is first
    first.inc()
    m.child(m.requests, "iris", "v1", "200").inc()
    m.requests.labels("iris", "v1", "200").inc()
    body, _ = m.render(None)
    assert b'kcr_requests_total{code="200",model_name="iris",protocol="v1"} 3.0' in body
    # Same label values on another metric: another child.
    assert m.child(m.preprocess, "iris") is not m.child(m.postprocess, "iris")


def test_cache_is_bounded() -> None:
    m = Metrics()
    limit = metrics_module._MAX_CHILDREN
    for i in range(limit + 10):
        m.child(m.preprocess, f"model-{i}").observe(0.001)
    assert len(m._children) == limit
    body, _ = m.render(None)
    assert f'request_preprocess_seconds_count{{model_name="model-{limit + 5}"}} 1.0'.encode() in body
