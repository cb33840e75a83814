"""Formatting and indexing of result tables for the report: number formats, markdown
tables, strict JSON values, CSV files, and the copy-task rows by subset."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "copy_accuracies",
    "finite",
    "fmt",
    "jsonable",
    "markdown_table",
    "pm",
    "ratio",
    "sci",
    "write_csv",
]


def finite(v: Any) -> bool:
    """A finite int or float."""
    return isinstance(v, (int, float)) and math.isfinite(v)


def fmt(v: Any, spec: str = ".3f") -> str:
    """Floats by ``spec``, None/NaN as "–", anything else by ``str``."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def sci(v: Any) -> str:
    """Three significant digits, or "–"."""
    return f"{v:.3g}" if finite(v) else "–"


def pm(mean: Any, sem: Any) -> str:
    """``mean ± sem`` (just the mean without a finite SEM), or "–"."""
    if not finite(mean):
        return "–"
    return f"{sci(mean)} ± {sci(sem)}" if finite(sem) else sci(mean)


def ratio(ours: Any, paper: Any) -> str:
    """``ours / paper`` to two digits, or "–"."""
    if not (finite(ours) and finite(paper)) or paper == 0:
        return "–"
    return f"{ours / paper:.2g}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def jsonable(o: Any) -> Any:
    """Plain JSON values: tuples → lists, numpy scalars → Python, NaN/inf → None."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    return o


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Rows as CSV, with the union of their keys as columns (first-seen order)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def copy_accuracies(
    rows: Sequence[dict[str, Any]], construction: str, hidden: int | None = None
) -> dict[tuple[int, int], dict[tuple[str, ...], dict[str, Any]]]:
    """``{(hidden, seed): {removed blocks: row}}`` for one construction."""
    out: dict[tuple[int, int], dict[tuple[str, ...], dict[str, Any]]] = {}
    for r in rows:
        if r["construction"] != construction:
            continue
        if hidden is not None and r["hidden"] != hidden:
            continue
        key = tuple(r["removed"].split("+")) if r["removed"] else ()
        out.setdefault((r["hidden"], r["seed"]), {})[key] = r
    return out
