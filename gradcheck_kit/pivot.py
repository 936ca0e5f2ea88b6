"""The matrix view of a Report: variable down, (device, dtype) across, one figure in each cell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def pivot(records: Sequence[dict[str, Any]], value: str) -> Any:
    """``value`` of each row at (case, variable) × (device, dtype), rows and columns in report order.

    A cell with no variables (skipped, error) fills its column with its status, so the
    reason a column is empty stays visible.
    """
    import pandas as pd

    if records and value not in records[0]:
        raise ValueError(f"no column {value!r}; choose one of {list(records[0])}")
    columns = list(dict.fromkeys((r["device"], r["dtype"]) for r in records))
    index = list(dict.fromkeys((r["case"], r["variable"]) for r in records if r["variable"]))
    table: dict[tuple[str, str], dict[tuple[str, str], Any]] = {column: {} for column in columns}
    whole_cell = {(r["case"], r["device"], r["dtype"]): r["status"] for r in records if not r["variable"]}
    for (case, device, dtype), status in whole_cell.items():
        for row_key in index:
            if row_key[0] == case:
                table[(device, dtype)][row_key] = status
    for r in records:
        if r["variable"]:
            table[(r["device"], r["dtype"])][(r["case"], r["variable"])] = r[value]
    frame = pd.DataFrame(
        {column: [table[column].get(key) for key in index] for column in columns},
        index=pd.MultiIndex.from_tuples(index, names=["case", "variable"]),
    )
    frame.columns = pd.MultiIndex.from_tuples(columns, names=["device", "dtype"])
    return frame
