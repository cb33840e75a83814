"""The sweep's output folder: one tidy table, written incrementally and atomically.

Layout of ``OUT``::

    results.parquet        every finished model × ablation subset (one table)
    parts/KEY.parquet      the rows of one model: the record that the model is done
    checkpoints/KEY.npz    the trained model (rnnschur.save format)
    runs.jsonl             one line per finished job: wall time, worker, status
    sweep.json             the diagnosis settings the folder was written with

Every file is written to a temporary name in the same folder, flushed to disk and
renamed over its target, so a killed sweep leaves complete files only and loses at
most the models in flight. A model counts as done when its part file exists with
status ``"ok"`` or ``"diverged"``; a rerun skips those and retries ``"error"`` cells
(their part file is replaced, so no row is ever duplicated). ``results.parquet`` is
rebuilt from the part files of the current spec, sorted by key and subset, so its
content does not depend on the order in which models finished. It holds only
deterministic columns: wall times and worker names go to ``runs.jsonl``. Undefined
values (``delta_per_mass`` of the intact model, metrics of a model without a table)
are nulls.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..files import atomic_write
from .spec import Cell, SpecError, SweepSpec

__all__ = [
    "FINAL_STATUSES",
    "ResultStore",
    "error_outcome",
    "read_results",
    "require_pyarrow",
]

#: Statuses that a rerun does not retry (training is deterministic).
FINAL_STATUSES = ("ok", "diverged")

_SUBSET_ORDER = ("none", "RR", "CR", "CC", "RR+CR", "RR+CC", "CR+CC", "RR+CR+CC")
_FORMAT = "rnnschur.sweep"

# Column name -> pyarrow type name, in table order; the varying parameters follow
# ``eval_seed`` (inserted by ``consolidate``).
_COLUMNS: dict[str, str] = {
    "key": "string",
    "task": "string",
    "construction": "string",
    "hidden": "int64",
    "seed": "int64",
    "train_seed": "int64",
    "subset": "string",
    "status": "string",
    "metric_name": "string",
    "removed_mass": "float64",
    "metric": "float64",
    "delta": "float64",
    "delta_per_mass": "float64",
    "fvu": "float64",
    "accuracy": "float64",
    "n_R": "int64",
    "spectral_radius": "float64",
    "schur_residual": "float64",
    "final_train_loss": "float64",
    "final_eval_fvu": "float64",
    "diverged_epoch": "int64",
    "message": "string",
    "alpha": "float64",
    "eval_size": "int64",
    "eval_seed": "int64",
    "task_params": "string",
    "train_config": "string",
}


def require_pyarrow() -> tuple[Any, Any]:
    """The modules ``pyarrow`` and ``pyarrow.parquet`` (an optional extra); an
    ``ImportError`` whose one-line message names the extra when absent."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        msg = (
            "sweep results are written with pyarrow: "
            'pip install "rnnschur[sweep]" (or "rnnschur[dask]")'
        )
        raise ImportError(msg) from exc
    return pa, pq


def error_outcome(key: str, exc: BaseException) -> dict[str, Any]:
    """The outcome of a job that raised outside :func:`run_cell` (e.g. a worker that
    kept dying), in :func:`run_cell`'s format."""
    return {
        "key": key,
        "status": "error",
        "message": f"{type(exc).__name__}: {exc}",
        "records": [],
        "summary": {},
        "checkpoint": None,
        "seconds": None,
        "worker": None,
    }


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _model_rows(cell: Cell, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one model: one per ablation subset, or one without subset if the
    model has no table (diverged or error)."""
    base = {
        "key": cell.key,
        "task": cell.task["name"],
        "construction": cell.construction,
        "hidden": cell.hidden,
        "seed": cell.seed,
        "train_seed": cell.train_seed,
        "status": outcome["status"],
        "message": outcome["message"],
        **{k: cell.diagnose[k] for k in ("alpha", "eval_size", "eval_seed")},
        "task_params": json.dumps(
            {k: v for k, v in cell.task.items() if k != "name"}, sort_keys=True
        ),
        "train_config": json.dumps(
            {k: v for k, v in cell.config.items() if k != "n_threads"}, sort_keys=True
        ),
    }
    base.update({k: v for k, v in outcome["summary"].items() if k in _COLUMNS})
    records = outcome["records"] or [{}]
    rows = []
    for rec in records:
        row = dict.fromkeys(_COLUMNS)
        row.update(base)
        row.update({k: v for k, v in rec.items() if k in _COLUMNS})
        # Undefined numbers (delta_per_mass of the intact model) are nulls: NaN would
        # make equal tables compare unequal.
        rows.append({k: None if _is_nan(v) else v for k, v in row.items()})
    return rows


def _param_columns(spec: SweepSpec) -> list[tuple[str, str, str]]:
    """``(column, part, parameter)`` for every parameter that varies in ``spec``;
    a name that clashes with another column gets a ``task_`` / ``train_`` prefix."""
    varying = spec.varying
    taken = set(_COLUMNS)
    both = set(varying["task"]) & set(varying["config"])
    out = []
    for part, prefix in (("task", "task_"), ("config", "train_")):
        for name in varying[part]:
            col = prefix + name if name in taken or name in both else name
            out.append((col, part, name))
    return out


def _param_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


class ResultStore:
    """The output folder of one sweep (see the module docstring).

    Parameters
    ----------
    out_dir : path
        Created if missing.
    spec : SweepSpec
    min_interval : float
        Seconds between two rewrites of ``results.parquet`` while models finish
        (it is always rewritten by :meth:`consolidate`).
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        spec: SweepSpec,
        *,
        min_interval: float = 2.0,
    ):
        self.pa, self.pq = require_pyarrow()
        self.out = Path(out_dir)
        self.spec = spec
        self.min_interval = min_interval
        self.parts = self.out / "parts"
        self.checkpoints = self.out / "checkpoints"
        for d in (self.out, self.parts, self.checkpoints):
            d.mkdir(parents=True, exist_ok=True)
        self._check_manifest()
        self.cells = {c.key: c for c in spec.cells}
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self._load_parts()
        self._last_write = 0.0

    def _check_manifest(self) -> None:
        path = self.out / "sweep.json"
        want = {"format": _FORMAT, "version": 1, "diagnose": self.spec.diagnose}
        if path.exists():
            have = json.loads(path.read_text(encoding="utf-8"))
            if have != want:
                msg = (
                    f"{self.out} holds results written with {have.get('diagnose')}; "
                    f"this spec asks for {self.spec.diagnose}: use another --out"
                )
                raise SpecError(msg)
            return
        atomic_write(path, json.dumps(want, sort_keys=True, indent=1).encode())

    def _load_parts(self) -> None:
        for path in sorted(self.parts.glob("*.parquet")):
            key = path.stem
            if key not in self.cells:
                continue  # from another version of the spec: kept, not reported
            try:
                self.rows[key] = self.pq.read_table(path).to_pylist()
            except (OSError, self.pa.ArrowException):
                path.replace(path.with_name(path.name + ".corrupt"))

    @property
    def completed(self) -> set[str]:
        """Keys of the models that a rerun skips."""
        return {
            k for k, rows in self.rows.items() if rows[0]["status"] in FINAL_STATUSES
        }

    def _table(
        self,
        rows: list[dict[str, Any]],
        extra: Sequence[tuple[str, list[Any]]] = (),
    ) -> Any:
        """Rows as a table of :data:`_COLUMNS`, with ``extra`` ``(name, values)``
        columns (types inferred; JSON text if mixed) after ``eval_seed``."""
        pa = self.pa
        cols = [
            (n, pa.array([r.get(n) for r in rows], type=getattr(pa, t)()))
            for n, t in _COLUMNS.items()
        ]
        added = []
        for name, values in extra:
            try:
                arr = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arr = pa.array([None if v is None else json.dumps(v) for v in values])
            added.append((name, arr))
        cut = list(_COLUMNS).index("eval_seed") + 1
        cols = cols[:cut] + added + cols[cut:]
        return pa.table(dict(cols))

    def _write(self, path: Path, table: Any) -> None:
        atomic_write(path, lambda fh: self.pq.write_table(table, fh))

    def add(self, cell: Cell, outcome: dict[str, Any]) -> None:
        """Record one finished model: checkpoint, part file, log line, and (at most
        every ``min_interval`` seconds) the consolidated table."""
        if outcome.get("checkpoint") is not None:
            atomic_write(self.checkpoints / f"{cell.key}.npz", outcome["checkpoint"])
        rows = _model_rows(cell, outcome)
        self._write(self.parts / f"{cell.key}.parquet", self._table(rows))
        self.rows[cell.key] = rows
        line = {
            k: outcome.get(k) for k in ("key", "status", "seconds", "worker", "message")
        }
        line["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with (self.out / "runs.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        if time.monotonic() - self._last_write >= self.min_interval:
            self.consolidate()

    def consolidate(self) -> Path:
        """Rewrite ``results.parquet`` from the recorded models of the spec."""
        rows = []
        for key in sorted(self.rows):
            rows.extend(
                sorted(
                    self.rows[key],
                    key=lambda r: (
                        -1 if r["subset"] is None else _SUBSET_ORDER.index(r["subset"])
                    ),
                )
            )
        extra = []
        for col, part, name in _param_columns(self.spec):
            values = [
                _param_value(getattr(self.cells[r["key"]], part).get(name))
                for r in rows
            ]
            extra.append((col, values))
        path = self.out / "results.parquet"
        self._write(path, self._table(rows, extra))
        self._last_write = time.monotonic()
        return path


def read_results(out_dir: str | os.PathLike[str]) -> Any:
    """``OUT/results.parquet`` as a ``pyarrow.Table``."""
    _, pq = require_pyarrow()
    return pq.read_table(Path(out_dir) / "results.parquet")
