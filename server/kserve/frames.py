"""v1 records and v2 ``content_type: "pd"`` requests as DataFrames.

pandas is imported only when a request actually needs a DataFrame, which keeps it off the cold-start
path; it is an optional dependency (the ``pandas`` extra, in the image), and without it those
requests get a 501 that says how to add it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from server.errors import PANDAS_INSTALL, InvalidInput, NotSupported
from server.kserve.checks import check_elements, utf8_strings

if TYPE_CHECKING:
    import pandas as pd


def pandas_for(what: str) -> Any:
    """The pandas module, or 501 naming what needed it: pandas is the ``pandas`` extra, not a
    dependency of the numeric install (see docs/serving.md, "Install and run")."""
    try:
        import pandas
    except ModuleNotFoundError as exc:
        if exc.name != "pandas":
            raise
        message = f"{what} need pandas, which this server was installed without: {PANDAS_INSTALL}"
        raise NotSupported(message) from None
    return pandas


def _record_frame(instance: dict[str, Any]) -> pd.DataFrame:
    pd = pandas_for("Records (instances that are JSON objects)")

    # A dict of scalars is one row; a dict of lists is columns (both shapes clients send).
    if any(isinstance(v, list) for v in instance.values()):
        try:
            return pd.DataFrame(instance)
        except ValueError as exc:
            raise InvalidInput(f"Cannot build a table from instance: {exc}") from None
    return pd.DataFrame([instance])


def _joined_columns(instances: list[Any], max_elements: int) -> dict[str, list[Any]] | None:
    """Records that all have the same keys, as one dict of columns (a list value is a column, a
    scalar a value repeated along it), counted as they are joined; None when the keys differ.
    One DataFrame from these, instead of one per record concatenated: 10,000 small records took
    3 s that way."""
    keys = list(instances[0])
    columns: dict[str, list[Any]] = {k: [] for k in keys}
    total = 0
    for instance in instances:
        if (
            not isinstance(instance, dict)
            or len(instance) != len(keys)
            or any(k not in instance for k in keys)
        ):
            return None
        n = None
        for value in instance.values():
            if isinstance(value, list):
                if n is None:
                    n = len(value)
                elif len(value) != n:
                    raise InvalidInput(
                        "Cannot build a table from instance: All arrays must be of the same length"
                    )
        rows = 1 if n is None else n
        total += rows * len(keys)
        check_elements(total, max_elements)
        for key in keys:
            value = instance[key]
            columns[key].extend(value if isinstance(value, list) else [value] * rows)
    return columns


def records_frame(instances: list[Any], max_elements: int) -> pd.DataFrame:
    """Instances that are records (JSON objects), or lists of records, as one DataFrame."""
    first = instances[0]
    pd = pandas_for("Records (instances that are JSON objects)")

    if all(isinstance(i, dict) and not any(isinstance(v, list) for v in i.values()) for i in instances):
        # Flat records: one DataFrame in one call (one frame per record is quadratic-ish: 50,000
        # records took 10 s on the event loop).
        check_elements(sum(len(i) for i in instances), max_elements)
        return pd.DataFrame.from_records(instances)
    columns = _joined_columns(instances, max_elements) if isinstance(first, dict) else None
    if columns is not None:
        return pd.DataFrame(columns)
    frames = []
    total = 0
    for instance in instances:
        if isinstance(instance, dict):
            frames.append(_record_frame(instance))
        elif isinstance(instance, list) and all(isinstance(r, dict) for r in instance):
            frames.append(pd.DataFrame(instance))
        else:
            raise InvalidInput("Mixed instances: expected every instance to be a record (object)")
        total += frames[-1].size
        check_elements(total, max_elements)
    return frames[0] if len(frames) == 1 else pd.concat(frames, axis=0)


def frame_from_inputs(columns: list[tuple[str, np.ndarray]]) -> pd.DataFrame:
    """``parameters.content_type == "pd"``: every input is a column named after it (KServe)."""
    pd = pandas_for('Requests with parameters.content_type "pd"')

    data = {}
    length = None
    for name, array in columns:
        flat = array.reshape(-1)
        if flat.dtype == object:
            strings = np.empty(len(flat), dtype=object)
            strings[:] = utf8_strings(name, flat)
            flat = strings
        if length is not None and len(flat) != length:
            raise InvalidInput(f"Input '{name}' has {len(flat)} values but earlier columns have {length}")
        length = len(flat)
        data[name] = flat
    return pd.DataFrame(data)
