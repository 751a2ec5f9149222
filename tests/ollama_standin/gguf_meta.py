"""Minimal GGUF header reader: key/value metadata and the parameter count, without loading the model.

Used by ``/api/show`` (``model_info``) and ``/api/tags`` (``details``) so they answer before llama.cpp loads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

# general.file_type → Ollama's quantization_level label
FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    32: "BF16",
}


@dataclass
class GGUFInfo:
    version: int
    metadata: dict[str, Any]
    array_keys: set[str] = field(default_factory=set)
    parameter_count: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "llama"))

    def get(self, suffix: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{suffix}", default)

    @property
    def context_length(self) -> int:
        return int(self.get("context_length", 0) or 0)

    @property
    def embedding_length(self) -> int:
        return int(self.get("embedding_length", 0) or 0)

    @property
    def quantization_level(self) -> str:
        return FILE_TYPES.get(int(self.metadata.get("general.file_type", -1)), "unknown")

    @property
    def parameter_size(self) -> str:
        n = self.parameter_count
        if n <= 0:
            return str(self.metadata.get("general.size_label", ""))
        if n >= 1_000_000_000:
            return f"{n / 1e9:.2f}B"
        return f"{n / 1e6:.2f}M"

    def model_info(self, verbose: bool = False) -> dict[str, Any]:
        """Ollama-style ``model_info``: big arrays become null unless verbose."""
        out: dict[str, Any] = {}
        for k, v in self.metadata.items():
            if k in self.array_keys and not verbose and isinstance(v, list) and len(v) > 64:
                out[k] = None
            else:
                out[k] = v
        out["general.parameter_count"] = self.parameter_count
        return dict(sorted(out.items()))


def _read(f: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _read_str(f: BinaryIO) -> str:
    n = _read(f, "<Q")
    return f.read(n).decode("utf-8", errors="replace")


def _read_value(f: BinaryIO, vtype: int) -> Any:
    if vtype in _SCALARS:
        return _read(f, _SCALARS[vtype])
    if vtype == _STRING:
        return _read_str(f)
    if vtype == _ARRAY:
        itype = _read(f, "<I")
        count = _read(f, "<Q")
        if itype in _SCALARS:
            fmt = _SCALARS[itype]
            size = struct.calcsize(fmt)
            raw = f.read(size * count)
            return list(struct.unpack("<" + fmt[1:] * count, raw)) if count else []
        return [_read_value(f, itype) for _ in range(count)]
    raise ValueError(f"unknown GGUF value type {vtype}")


def read_gguf(path: str | Path) -> GGUFInfo:
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = _read(f, "<I")
        n_tensors = _read(f, "<Q")
        n_kv = _read(f, "<Q")
        meta: dict[str, Any] = {}
        arrays: set[str] = set()
        for _ in range(n_kv):
            key = _read_str(f)
            vtype = _read(f, "<I")
            meta[key] = _read_value(f, vtype)
            if vtype == _ARRAY:
                arrays.add(key)
        params = 0
        for _ in range(n_tensors):
            _read_str(f)
            n_dims = _read(f, "<I")
            count = 1
            for _ in range(n_dims):
                count *= _read(f, "<Q")
            _read(f, "<I")  # ggml type
            _read(f, "<Q")  # offset
            params += count
    return GGUFInfo(version=version, metadata=meta, array_keys=arrays, parameter_count=params)
