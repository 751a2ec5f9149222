"""Wire format ↔ numpy for the KServe v1 and v2 protocols (DataFrames: ``server.kserve.frames``).

Every decoding failure raises ``InvalidInput`` with a message that names the offending field, so the
routers can answer 400 instead of letting numpy's or sklearn's exception become a 500. Sizes and
counts are checked before anything is allocated (``server.kserve.checks``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from server.errors import InvalidInput, PayloadTooLarge
from server.kserve.checks import check_elements, check_strings
from server.kserve.checks import utf8_strings as utf8_strings  # the v2 decoders use it from here

V2_TO_NUMPY: dict[str, Any] = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
_NUMPY_TO_V2 = {np.dtype(t): name for name, t in V2_TO_NUMPY.items() if name != "BYTES"}

#: Upper bound on the number of scalars in one request (v1 instances x features, v2 tensor elements).
DEFAULT_MAX_ELEMENTS = 10_000_000


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # KServe's wording, so log searches and client checks keep matching.
        raise InvalidInput(f"Unrecognized request format: {exc}") from None


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


# --- v1 -----------------------------------------------------------------------------------------


def _is_structured_cloudevent(body: dict[str, Any]) -> bool:
    return "specversion" in body and all(k in body for k in ("time", "type", "source", "id", "data"))


def v1_instances(body: Any) -> list[Any]:
    """The list a v1 request carries: ``inputs`` wins over ``instances`` (as in KServe)."""
    if isinstance(body, dict) and _is_structured_cloudevent(body) and isinstance(body["data"], dict):
        body = body["data"]
    if not isinstance(body, dict):
        raise InvalidInput('Expected a JSON object with an "instances" or "inputs" list')
    if "inputs" in body:
        key = "inputs"
    elif "instances" in body:
        key = "instances"
    else:
        raise InvalidInput('Expected "instances" or "inputs" in the request body')
    instances = body[key]
    if not isinstance(instances, list):
        raise InvalidInput(f'Expected "{key}" to be a list')
    if not instances:
        raise InvalidInput(f'"{key}" is empty: send at least one instance')
    return instances


def decode_v1(instances: list[Any], max_elements: int = DEFAULT_MAX_ELEMENTS, strings: bool = True) -> Any:
    """Instances → ndarray, DataFrame (records, with column names) or list of str. ``strings``:
    whether the instances may hold strings (False when the body has no quotes but its key's)."""
    first = instances[0]
    if isinstance(first, dict) or (isinstance(first, list) and first and isinstance(first[0], dict)):
        from server.kserve.frames import records_frame

        return records_frame(instances, max_elements)
    if isinstance(first, str):
        check_strings(len(instances))
        if not all(isinstance(i, str) for i in instances):
            raise InvalidInput("Mixed instances: expected every instance to be a string")
        return instances
    if not strings:
        try:
            array = np.asarray(instances)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"Instances do not form a regular array: {exc}") from None
        check_elements(array.size, max_elements)
        return array
    return _array(instances, max_elements)


def _array(instances: list[Any], max_elements: int) -> np.ndarray:
    """As ``np.asarray`` (KServe's conversion), except that strings stay Python objects: numpy
    would pad every element to the longest string (one 1 MB string among 100,000 short values: a
    400 GB array)."""
    try:
        array = np.asarray(instances, dtype=object)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"Instances do not form a regular array: {exc}") from None
    check_elements(array.size, max_elements)
    flat = array.reshape(-1)
    if any(type(x) is list for x in flat):
        raise InvalidInput("Instances do not form a regular array: rows of different lengths")
    if any(type(x) is str for x in flat):
        check_strings(array.size)
        return array
    try:
        return np.asarray(instances)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"Instances do not form a regular array: {exc}") from None


def encode_v1(result: Any) -> bytes:
    return dumps({"predictions": to_jsonable(result)})


def to_jsonable(result: Any) -> Any:
    """Like KServe: ndarray → ``tolist()``, DataFrame → list of row dicts."""
    if isinstance(result, np.ndarray):
        return result.tolist()
    if _is_frame(result):
        return result.to_dict(orient="records")
    return result


def _is_frame(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "to_dict")


# --- v2 tensors ---------------------------------------------------------------------------------


def bytes_tensor_from_raw(raw: bytes, expected: int | None = None) -> np.ndarray:
    """Decode the binary BYTES layout: each element is a 4-byte little-endian length, then the bytes.
    With ``expected``, the element count is checked as it is read, not after the whole split."""
    items: list[bytes] = []
    offset, end = 0, len(raw)
    while offset < end:
        if expected is not None and len(items) >= expected:
            raise InvalidInput(f"Malformed BYTES tensor: more than the {expected} elements of its shape")
        if offset + 4 > end:
            raise InvalidInput("Malformed BYTES tensor: truncated element length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInput("Malformed BYTES tensor: element longer than the data")
        items.append(raw[offset : offset + length])
        offset += length
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def bytes_tensor_to_raw(array: np.ndarray) -> bytes:
    parts = []
    for item in array.reshape(-1):
        data = item if isinstance(item, bytes) else str(item).encode("utf-8")
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def _element_count(shape: Sequence[int], max_elements: int) -> int:
    """Elements a shape holds. The product of its non-zero dimensions is bounded too, so an empty
    tensor such as ``[0, 2**62]`` cannot ask numpy for an impossible layout (found by fuzzing)."""
    count, nonzero = 1, 1
    for dim in shape:
        if dim < 0:
            raise InvalidInput(f"Invalid shape {list(shape)}: dimensions must be non-negative")
        count *= dim
        nonzero *= max(dim, 1)
        if nonzero > max_elements:
            raise PayloadTooLarge(
                f"Request has shape {list(shape)}, over {max_elements} elements; the limit is {max_elements}"
            )
    return count


def decode_tensor(
    name: str,
    datatype: str,
    shape: Sequence[int],
    data: Any,
    raw: bytes | None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> np.ndarray:
    dtype = V2_TO_NUMPY.get(datatype)
    if dtype is None:
        raise InvalidInput(
            f"Unsupported datatype '{datatype}' for input '{name}'; expected one of {', '.join(V2_TO_NUMPY)}"
        )
    expected = _element_count(shape, max_elements)
    check_elements(expected, max_elements)
    if datatype == "BYTES":
        check_strings(expected)
    if raw is not None:
        if datatype == "BYTES":
            array = bytes_tensor_from_raw(raw, expected)
        else:
            itemsize = np.dtype(dtype).itemsize
            if len(raw) != expected * itemsize:
                raise InvalidInput(
                    f"Input '{name}': binary data has {len(raw)} bytes but shape {list(shape)} of "
                    f"{datatype} needs {expected * itemsize}"
                )
            array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=False)
    else:
        if datatype == "FP16":
            raise InvalidInput(
                "Sending FP16 data via JSON is not supported. Please use the binary data format for "
                f"input {name}"
            )
        if not isinstance(data, list):
            raise InvalidInput(f"Input '{name}': 'data' must be a list")
        try:
            if datatype == "BYTES":
                array = np.array(data, dtype=object).reshape(-1)
                for item in array:
                    if not isinstance(item, (str, bytes)):
                        raise InvalidInput(f"Input '{name}': BYTES data must be strings")
            else:
                with np.errstate(over="ignore"):
                    array = np.array(data, dtype=dtype)
                if array.dtype.kind == "f" and not np.isfinite(array).all():
                    # NaN/Infinity literals (not JSON) or a number beyond the type's range.
                    raise InvalidInput(
                        f"Input '{name}': {datatype} data in JSON must be finite numbers within range "
                        "(NaN and Infinity can only be sent as binary tensor data)"
                    )
        except InvalidInput:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidInput(f"Input '{name}': data does not match datatype {datatype}: {exc}") from None
    if array.size != expected:
        raise InvalidInput(
            f"Input '{name}': cannot reshape array of size {array.size} into shape {tuple(shape)}"
        )
    return array.reshape(shape)


def datatype_of(array: np.ndarray) -> str:
    if array.dtype.kind in ("O", "U", "S", "M", "m"):
        return "BYTES"
    try:
        return _NUMPY_TO_V2[array.dtype]
    except KeyError:
        raise InvalidInput(f"Cannot represent dtype {array.dtype} as a v2 tensor") from None


def tensor_data(array: np.ndarray) -> list[Any]:
    """Flat row-major JSON data; BYTES become str (KServe decodes bytes as UTF-8)."""
    flat = array.reshape(-1)
    if flat.dtype.kind == "S" or flat.dtype == object:
        return [x.decode("utf-8", errors="replace") if isinstance(x, bytes) else _scalar(x) for x in flat]
    if flat.dtype.kind in ("M", "m"):
        return [str(x) for x in flat]
    return flat.tolist()


def _scalar(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def tensor_raw(array: np.ndarray) -> bytes:
    if datatype_of(array) == "BYTES":
        return bytes_tensor_to_raw(array)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def frame_from_inputs(columns: list[tuple[str, np.ndarray]]) -> Any:
    """``parameters.content_type == "pd"``: every input is a column (``server.kserve.frames``)."""
    from server.kserve.frames import frame_from_inputs as frame

    return frame(columns)
