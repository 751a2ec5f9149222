"""One corpus of requests sent to KServe's model server and to ours.

Each case either must match KServe byte for byte (status and JSON body, generated ids normalised),
or is tagged with the documented difference (``server/differences.py``) that explains the
deliberate change — the test asserts both KServe's behaviour and ours for those.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
FLAT = [v for row in ROWS for v in row]
JSON = {"content-type": "application/json"}


@dataclass
class Case:
    id: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    #: None: identical to KServe. Otherwise the key of the documented difference.
    difference: str | None = None
    #: Our expected status for a difference case.
    ours: int | None = None


def j(obj: Any) -> bytes:
    return orjson.dumps(obj)


def v1(model: str, payload: Any, **kw: Any) -> tuple[str, str, bytes]:
    return "POST", f"/v1/models/{model}:predict", j(payload)


def v2_input(name: str, datatype: str, shape: list[int], data: Any, **params: Any) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": name, "shape": shape, "datatype": datatype, "data": data}
    if params:
        tensor["parameters"] = params
    return tensor


def binary_request(tensors: list[tuple[str, str, np.ndarray]], **extra: Any) -> tuple[bytes, dict[str, str]]:
    inputs, raws = [], []
    for name, datatype, array in tensors:
        if datatype == "BYTES":
            raw = b"".join(struct.pack("<I", len(x)) + x for x in array.reshape(-1))
        else:
            raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        inputs.append(
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        raws.append(raw)
    head = j({"inputs": inputs, **extra})
    return head + b"".join(raws), {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }


def iris_cases(m: str = "iris") -> list[Case]:
    infer = f"/v2/models/{m}/infer"
    predict = f"/v1/models/{m}:predict"
    c: list[Case] = [
        # --- routes and metadata -------------------------------------------------------------
        Case("root", "GET", "/"),
        Case("root-post", "POST", "/"),
        Case("v1-models", "GET", "/v1/models"),
        Case("v1-model-ready", "GET", f"/v1/models/{m}"),
        Case("v1-model-unknown", "GET", "/v1/models/unknown"),
        Case("v1-get-predict", "GET", f"/v1/models/{m}:predict"),
        Case("v1-trailing-slash", "GET", "/v1/models/"),
        Case("v2-live", "GET", "/v2/health/live"),
        Case("v2-ready", "GET", "/v2/health/ready"),
        Case("v2-models", "GET", "/v2/models"),
        Case("v2-model-metadata", "GET", f"/v2/models/{m}", difference="metadata-from-estimator", ours=200),
        Case("v2-model-ready", "GET", f"/v2/models/{m}/ready"),
        Case("v2-model-unknown", "GET", "/v2/models/unknown"),
        Case("v2-model-ready-unknown", "GET", "/v2/models/unknown/ready"),
        Case("v2-version-meta", "GET", f"/v2/models/{m}/versions/1"),
        Case("v2-version-ready", "GET", f"/v2/models/{m}/versions/1/ready"),
        Case("v2-version-infer", "POST", f"/v2/models/{m}/versions/1/infer", j({"inputs": []})),
        Case("unknown-route", "GET", "/nope"),
        Case("v1-explain", "POST", f"/v1/models/{m}:explain", j({"instances": ROWS})),
        Case("v1-predict-unknown", "POST", "/v1/models/unknown:predict", j({"instances": ROWS})),
        Case(
            "v2-infer-unknown",
            "POST",
            "/v2/models/unknown/infer",
            j({"inputs": [v2_input("x", "FP32", [2, 4], FLAT)]}),
        ),
        Case("v1-wrong-method", "PUT", predict, j({"instances": ROWS})),
        # --- v1 successes --------------------------------------------------------------------
        Case("v1-instances", "POST", predict, j({"instances": ROWS})),
        Case("v1-inputs", "POST", predict, j({"inputs": ROWS})),
        Case("v1-inputs-win", "POST", predict, j({"instances": [[5.1, 3.5, 1.4, 0.2]], "inputs": ROWS})),
        Case("v1-one-row", "POST", predict, j({"instances": [[5.1, 3.5, 1.4, 0.2]]})),
        Case("v1-ints", "POST", predict, j({"instances": [[7, 3, 5, 2]]})),
        Case("v1-bools", "POST", predict, j({"instances": [[True, False, True, False]]})),
        Case("v1-32-rows", "POST", predict, j({"instances": ROWS * 16})),
        Case("v1-no-content-type", "POST", predict, j({"instances": ROWS}), headers={}),
        Case("v1-extra-keys", "POST", predict, j({"instances": ROWS, "parameters": {"x": 1}})),
        Case("v1-big-values", "POST", predict, j({"instances": [[1e30, -1e30, 0.0, 1e-30]]})),
        Case(
            "v1-cloudevent-structured-data",
            "POST",
            predict,
            j({"instances": [[6.8, 2.8, 4.8, 1.4]]}),
            headers={"content-type": "application/json", "x-extra": "1"},
        ),
        # --- v1 errors, same as KServe ------------------------------------------------------
        Case("v1-malformed", "POST", predict, b"{not json"),
        Case("v1-empty-body", "POST", predict, b""),
        Case("v1-instances-string", "POST", predict, j({"instances": "x"})),
        Case("v1-instances-object", "POST", predict, j({"instances": {"a": 1}})),
        Case("v1-truncated-json", "POST", predict, b'{"instances": [[1, 2'),
        # --- v1 errors KServe answers with 500; we with 400 ----------------------------------
        Case("v1-no-key", "POST", predict, j({}), difference="bad-input-400", ours=400),
        Case(
            "v1-empty-instances", "POST", predict, j({"instances": []}), difference="bad-input-400", ours=400
        ),
        Case(
            "v1-3-features",
            "POST",
            predict,
            j({"instances": [[1, 2, 3]]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v1-5-features",
            "POST",
            predict,
            j({"instances": [[1, 2, 3, 4, 5]]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v1-ragged",
            "POST",
            predict,
            j({"instances": [[1, 2, 3, 4], [1, 2]]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v1-strings", "POST", predict, j({"instances": ["a", "b"]}), difference="bad-input-400", ours=400
        ),
        Case(
            "v1-3d", "POST", predict, j({"instances": [[[1, 2, 3, 4]]]}), difference="bad-input-400", ours=400
        ),
        Case("v1-top-level-array", "POST", predict, j(ROWS), difference="bad-input-400", ours=400),
        Case(
            "v1-null-feature",
            "POST",
            predict,
            j({"instances": [[None, 1, 2, 3]]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v1-string-feature",
            "POST",
            predict,
            j({"instances": [[1, 2, 3, "a"]]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case("v1-inputs-string", "POST", predict, j({"inputs": "x"}), difference="bad-input-400", ours=400),
        Case(
            "v1-scalars",
            "POST",
            predict,
            j({"instances": [1, 2, 3, 4]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v1-text-plain",
            "POST",
            predict,
            j({"instances": ROWS}),
            headers={"content-type": "text/plain"},
            difference="any-content-type",
            ours=200,
        ),
        # --- v2 successes -------------------------------------------------------------------
        Case("v2-fp32", "POST", infer, j({"inputs": [v2_input("x", "FP32", [2, 4], FLAT)]})),
        Case("v2-fp64-nested", "POST", infer, j({"inputs": [v2_input("x", "FP64", [2, 4], ROWS)]})),
        Case(
            "v2-id-echo", "POST", infer, j({"id": "req-42", "inputs": [v2_input("x", "FP32", [2, 4], FLAT)]})
        ),
        Case(
            "v2-params",
            "POST",
            infer,
            j(
                {
                    "id": "p",
                    "parameters": {"a": 1, "b": "x", "c": True},
                    "inputs": [v2_input("x", "FP32", [2, 4], FLAT)],
                }
            ),
        ),
        Case(
            "v2-output-0",
            "POST",
            infer,
            j(
                {
                    "id": "o",
                    "inputs": [v2_input("x", "FP32", [2, 4], FLAT)],
                    "outputs": [{"name": "output-0"}],
                }
            ),
        ),
        Case(
            "v2-two-inputs",
            "POST",
            infer,
            j({"id": "t", "inputs": [v2_input("x", "FP32", [2, 4], FLAT), v2_input("y", "INT64", [1], [1])]}),
        ),
        Case("v2-one-row", "POST", infer, j({"id": "r", "inputs": [v2_input("x", "FP32", [1, 4], ROWS[0])]})),
        Case(
            "v2-binary-output",
            "POST",
            infer,
            j(
                {
                    "id": "b",
                    "parameters": {"binary_data_output": True},
                    "inputs": [v2_input("x", "FP32", [2, 4], FLAT)],
                }
            ),
        ),
        Case(
            "v2-binary-output-per-output",
            "POST",
            infer,
            j(
                {
                    "id": "bo",
                    "inputs": [v2_input("x", "FP32", [2, 4], FLAT)],
                    "outputs": [{"name": "output-0", "parameters": {"binary_data": True}}],
                }
            ),
        ),
        Case(
            "v2-unknown-output",
            "POST",
            infer,
            j({"inputs": [v2_input("x", "FP32", [2, 4], FLAT)], "outputs": [{"name": "probs"}]}),
        ),
        Case("v2-fp16-json", "POST", infer, j({"inputs": [v2_input("x", "FP16", [2, 4], FLAT)]})),
        Case(
            "v2-binary-no-header",
            "POST",
            infer,
            b"\x00\x01\x02",
            headers={"content-type": "application/octet-stream"},
        ),
        # --- v2: KServe 422/500, ours 400 -----------------------------------------------------
        Case("v2-missing-inputs", "POST", infer, j({"id": "x"}), difference="schema-400", ours=400),
        Case("v2-malformed", "POST", infer, b"{not json", difference="schema-400", ours=400),
        Case(
            "v2-missing-shape",
            "POST",
            infer,
            j({"inputs": [{"name": "x", "datatype": "FP32", "data": FLAT}]}),
            difference="schema-400",
            ours=400,
        ),
        Case(
            "v2-param-object",
            "POST",
            infer,
            j({"parameters": {"a": {"b": 1}}, "inputs": [v2_input("x", "FP32", [2, 4], FLAT)]}),
            difference="schema-400",
            ours=400,
        ),
        Case(
            "v2-unknown-datatype",
            "POST",
            infer,
            j({"inputs": [v2_input("x", "FP31", [2, 4], FLAT)]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v2-reshape",
            "POST",
            infer,
            j({"inputs": [v2_input("x", "FP32", [3, 4], FLAT)]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v2-3-features",
            "POST",
            infer,
            j({"inputs": [v2_input("x", "FP32", [2, 3], FLAT[:6])]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case("v2-empty-inputs", "POST", infer, j({"inputs": []}), difference="bad-input-400", ours=400),
        Case(
            "v2-int8-overflow",
            "POST",
            infer,
            j({"inputs": [v2_input("x", "INT8", [1, 4], [300, 1, 1, 1])]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v2-bytes-to-numeric-model",
            "POST",
            infer,
            j({"inputs": [v2_input("x", "BYTES", [2], ["a", "b"])]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v2-nan-string",
            "POST",
            infer,
            j({"inputs": [v2_input("x", "FP32", [1, 4], ["a", 1, 2, 3])]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v2-1d",
            "POST",
            infer,
            j({"inputs": [v2_input("x", "FP32", [4], ROWS[0])]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case(
            "v2-predict-proba-output",
            "POST",
            infer,
            j(
                {
                    "id": "pp",
                    "inputs": [v2_input("x", "FP32", [2, 4], FLAT)],
                    "outputs": [{"name": "predict_proba"}],
                }
            ),
            difference="method-outputs",
            ours=200,
        ),
        Case(
            "v2-binary-and-json-output",
            "POST",
            infer,
            j(
                {
                    "id": "bj",
                    "parameters": {"binary_data_output": True},
                    "inputs": [v2_input("x", "FP32", [2, 4], FLAT)],
                    "outputs": [{"name": "output-0"}],
                }
            ),
            difference="binary-default",
            ours=200,
        ),
    ]
    for dt, np_dtype in (
        ("INT64", np.int64),
        ("INT32", np.int32),
        ("INT16", np.int16),
        ("INT8", np.int8),
        ("UINT8", np.uint8),
        ("UINT16", np.uint16),
        ("UINT32", np.uint32),
        ("UINT64", np.uint64),
        ("BOOL", np.bool_),
    ):
        data = [[7, 3, 5, 2]] if dt != "BOOL" else [[True, False, True, True]]
        c.append(
            Case(
                f"v2-{dt.lower()}", "POST", infer, j({"id": dt, "inputs": [v2_input("x", dt, [1, 4], data)]})
            )
        )
        body, headers = binary_request([("x", dt, np.array(data, dtype=np_dtype))], id=f"bin-{dt}")
        c.append(Case(f"v2-binary-in-{dt.lower()}", "POST", infer, body, headers))
    for dt, np_dtype in (("FP32", np.float32), ("FP64", np.float64), ("FP16", np.float16)):
        body, headers = binary_request([("x", dt, np.array(ROWS, dtype=np_dtype))], id=f"bin-{dt}")
        c.append(Case(f"v2-binary-in-{dt.lower()}", "POST", infer, body, headers))
        body, headers = binary_request(
            [("x", dt, np.array(ROWS, dtype=np_dtype))],
            id=f"binbin-{dt}",
            parameters={"binary_data_output": True},
        )
        c.append(Case(f"v2-binary-in-out-{dt.lower()}", "POST", infer, body, headers))
    return c


def proba_cases(m: str = "iris") -> list[Case]:
    """The same model served with PREDICT_PROBA=true."""
    infer = f"/v2/models/{m}/infer"
    return [
        Case("proba-v1", "POST", f"/v1/models/{m}:predict", j({"instances": ROWS})),
        Case("proba-v1-inputs", "POST", f"/v1/models/{m}:predict", j({"inputs": ROWS * 3})),
        Case("proba-v2", "POST", infer, j({"id": "p", "inputs": [v2_input("x", "FP32", [2, 4], FLAT)]})),
        Case("proba-v2-fp64", "POST", infer, j({"id": "p", "inputs": [v2_input("x", "FP64", [2, 4], FLAT)]})),
        Case(
            "proba-v2-binary-out",
            "POST",
            infer,
            j(
                {
                    "id": "pb",
                    "parameters": {"binary_data_output": True},
                    "inputs": [v2_input("x", "FP32", [2, 4], FLAT)],
                }
            ),
        ),
    ]


def labels_cases(m: str = "iris-labels") -> list[Case]:
    infer = f"/v2/models/{m}/infer"
    return [
        Case("labels-v1", "POST", f"/v1/models/{m}:predict", j({"instances": ROWS})),
        # KServe 0.21 cannot encode string results over v2 ("decoding str is not supported").
        Case(
            "labels-v2",
            "POST",
            infer,
            j({"id": "l", "inputs": [v2_input("x", "FP64", [2, 4], FLAT)]}),
            difference="string-outputs",
            ours=200,
        ),
        Case(
            "labels-v2-binary-out",
            "POST",
            infer,
            j(
                {
                    "id": "lb",
                    "parameters": {"binary_data_output": True},
                    "inputs": [v2_input("x", "FP64", [2, 4], FLAT)],
                }
            ),
            difference="string-outputs",
            ours=200,
        ),
    ]


RECORD = {"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4, "size": "large"}
RECORD2 = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2, "size": "small"}


def pipeline_cases(m: str = "iris-pipeline") -> list[Case]:
    predict = f"/v1/models/{m}:predict"
    infer = f"/v2/models/{m}/infer"
    columns = {k: [RECORD[k], RECORD2[k]] for k in RECORD}
    pd_inputs = [v2_input(k, "BYTES" if k == "size" else "FP64", [2], v) for k, v in columns.items()]
    return [
        Case("pipe-v1-record-lists", "POST", predict, j({"instances": [[RECORD, RECORD2]]})),
        Case("pipe-v1-columns", "POST", predict, j({"instances": [columns]})),
        Case(
            "pipe-v1-records",
            "POST",
            predict,
            j({"instances": [RECORD, RECORD2]}),
            difference="records",
            ours=200,
        ),
        Case(
            "pipe-v2-pd",
            "POST",
            infer,
            j({"id": "pd", "parameters": {"content_type": "pd"}, "inputs": pd_inputs}),
        ),
        Case(
            "pipe-v1-missing-column",
            "POST",
            predict,
            j({"instances": [[{k: v for k, v in RECORD.items() if k != "size"}]]}),
            difference="bad-input-400",
            ours=400,
        ),
        Case("pipe-v1-unknown-category", "POST", predict, j({"instances": [[{**RECORD, "size": "huge"}]]})),
    ]
