"""The matrix view of a Report: variable down, (device, dtype) across, one figure in each cell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def pivot(records: Sequence[dict[str, Any]], value: str) -> Any:
    """``value`` of each row at (case, variable) × (device, dtype), rows and columns in report order.

    Rows of a report that carries test ids (the pytest plugin's) are led by their ``test_id``: two tests
    checking one case were one line, the later test's figure hiding the earlier's. A cell with no
    variables (skipped, error) fills its column with its status, so the reason a column is empty stays visible; a
    case with no variable in any cell (every cell skipped: ``--device cuda`` on a CPU machine) is one row of them,
    where the pivot was an empty table.
    """
    import pandas as pd

    if records and value not in records[0]:
        raise ValueError(f"no column {value!r}; choose one of {list(records[0])}")
    names = ["test_id", "case", "variable"] if any(r.get("test_id") for r in records) else ["case", "variable"]
    columns = list(dict.fromkeys((r["device"], r["dtype"]) for r in records))
    index = list(dict.fromkeys(_row_key(r, names) for r in records if r["variable"]))
    table: dict[tuple[str, str], dict[tuple[str, ...], Any]] = {column: {} for column in columns}
    whole_cell = {
        (*_row_key(r, names)[:-1], r["device"], r["dtype"]): r["status"] for r in records if not r["variable"]
    }
    cases = {key[:-1] for key in index}
    index += list(dict.fromkeys((*key[:-2], "") for key in whole_cell if key[:-2] not in cases))
    for key, status in whole_cell.items():
        for row_key in index:
            if row_key[:-1] == key[:-2]:
                table[key[-2:]][row_key] = status
    for r in records:
        if r["variable"]:
            table[(r["device"], r["dtype"])][_row_key(r, names)] = r[value]
    frame = pd.DataFrame(
        {column: [table[column].get(key) for key in index] for column in columns},
        index=pd.MultiIndex.from_tuples(index, names=names),
    )
    frame.columns = pd.MultiIndex.from_tuples(columns, names=["device", "dtype"])
    return frame


def _row_key(record: dict[str, Any], names: list[str]) -> tuple[str, ...]:
    return tuple(record[name] for name in names)
