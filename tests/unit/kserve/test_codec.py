"""Codec edge cases found or worth pinning down (the broad properties are fuzzed in tests/reliability)."""

from __future__ import annotations

import numpy as np
import pytest

from server.errors import InvalidInput, PayloadTooLarge
from server.kserve.codec import (
    bytes_tensor_from_raw,
    bytes_tensor_to_raw,
    decode_tensor,
    decode_v1,
    v1_instances,
)


@pytest.mark.parametrize("shape", [[0, 2**62], [0, *[10**7] * 5], [2**40, 0]])
def test_empty_tensor_with_huge_dimensions_is_refused(shape: list[int]) -> None:
    # Found by hypothesis: numpy raised "array is too big" (a 500) reshaping an empty array.
    with pytest.raises(PayloadTooLarge):
        decode_tensor("x", "FP32", shape, [], None)


def test_empty_tensors_still_decode() -> None:
    assert decode_tensor("x", "FP32", [0, 3], [], None).shape == (0, 3)
    assert decode_tensor("x", "INT64", [2, 0], None, b"").shape == (2, 0)


def test_bytes_tensor_round_trip() -> None:
    array = np.array([b"a", "b\u00e9".encode(), b""], dtype=object)
    assert bytes_tensor_from_raw(bytes_tensor_to_raw(array)).tolist() == array.tolist()
    with pytest.raises(InvalidInput):
        bytes_tensor_from_raw(b"\x05\x00\x00\x00ab")


def test_records_become_named_columns() -> None:
    frame = decode_v1(v1_instances({"instances": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}))
    assert list(frame.columns) == ["a", "b"] and frame["a"].tolist() == [1, 2]


def test_inputs_win_over_instances() -> None:
    assert v1_instances({"instances": [[1]], "inputs": [[2]]}) == [[2]]
