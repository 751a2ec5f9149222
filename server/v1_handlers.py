"""KServe v1 prediction: bytes in, bytes out.

No web framework here: ``server.fastpath`` calls ``predict_v1`` before FastAPI is imported, and the
FastAPI route in ``server.v1`` calls the same function.
"""

from __future__ import annotations

import time

from server import codec
from server.dataplane import DataPlane
from server.runtime import PredictiveModel


async def predict_v1(dataplane: DataPlane, model: PredictiveModel, body: bytes) -> bytes:
    """v1 body in, v1 body out; raises ``server.errors`` types."""
    metrics, name = dataplane.metrics, model.name
    start = time.perf_counter()
    try:
        x = codec.decode_v1(codec.v1_instances(codec.parse_json(body)), dataplane.settings.max_elements)
    finally:
        metrics.preprocess.labels(name).observe(time.perf_counter() - start)
    result = await dataplane.predict(model, x, model.default_output)
    start = time.perf_counter()
    payload = codec.encode_v1(result)
    metrics.postprocess.labels(name).observe(time.perf_counter() - start)
    return payload
