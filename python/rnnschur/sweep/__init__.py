"""Sweeps: many trained models over a grid of settings, each taken apart in Schur form.

Application layer (the library never imports it). :func:`load_spec` reads a TOML grid,
:func:`run_sweep` trains and diagnoses every cell on an executor (local processes or
Dask), and the results land in one tidy table, ``OUT/results.parquet``.
"""

from __future__ import annotations

from .executors import DaskExecutor, Executor, LocalExecutor, make_executor
from .results import ResultStore, read_results
from .runner import SweepSummary, run_cell, run_sweep, sweep
from .spec import Cell, SpecError, SweepSpec, derive_seed, load_spec, parse_spec

__all__ = [
    "Cell",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "ResultStore",
    "SpecError",
    "SweepSpec",
    "SweepSummary",
    "derive_seed",
    "load_spec",
    "make_executor",
    "parse_spec",
    "read_results",
    "run_cell",
    "run_sweep",
    "sweep",
]
