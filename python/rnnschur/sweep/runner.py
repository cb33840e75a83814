"""The per-model job of a sweep, and the loop that runs all of them on an executor.

:func:`run_cell` is a plain top-level function of plain data (a cell dict) returning
plain data, so it pickles for local processes and for Dask workers alike; it never
touches the output folder (a Dask worker may run on another machine). The parent
process writes everything, through :class:`~rnnschur.sweep.results.ResultStore`.
"""

from __future__ import annotations

import collections
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import backend
from .executors import Executor, make_executor
from .results import ResultStore, error_outcome
from .spec import Cell, SweepSpec, load_spec

__all__ = ["SweepSummary", "run_cell", "run_sweep", "sweep"]

#: A cell whose worker died this many times is recorded as an error (Dask's own
#: ``allowed-failures`` retries come on top of this for the Dask executors).
MAX_LOST = 3


def _checkpoint_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="rnnschur-sweep-") as tmp:
        path = Path(tmp) / "model.npz"
        backend.save(path, model)
        return path.read_bytes()


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """Train one model and take its ablation table; never raises for a bad model.

    Parameters
    ----------
    cell : dict
        ``Cell.to_dict()``: ``key``, ``task`` (task dict), ``construction``,
        ``hidden``, ``seed``, ``train_seed``, ``config`` (TrainConfig dict),
        ``diagnose`` (``alpha``, ``eval_size``, ``eval_seed``).

    Returns
    -------
    dict
        ``key``; ``status`` (``"ok"``, ``"diverged"`` or ``"error"``); ``message``
        (None or why); ``records`` (one dict per ablation subset, empty unless ok);
        ``summary`` (model-level numbers); ``checkpoint`` (bytes of the saved model
        or None); ``seconds`` (wall time of the job); ``worker`` (host:pid).
    """
    t0 = time.perf_counter()
    out: dict[str, Any] = {
        "key": cell["key"],
        "status": "ok",
        "message": None,
        "records": [],
        "summary": {},
        "checkpoint": None,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    try:
        task = backend.task_from_dict(cell["task"])
        config = backend.TrainConfig.from_dict(cell["config"])
        model = backend.train(
            task,
            cell["construction"],
            cell["hidden"],
            seed=cell["train_seed"],
            config=config,
            progress=False,
        )
        records, summary = backend.ablation_records(model, **cell["diagnose"])
        history = model.history
        summary["final_train_loss"] = history["train_loss"][-1]
        summary["final_eval_fvu"] = history["eval_fvu"][-1]
        out.update(records=records, summary=summary)
        out["checkpoint"] = _checkpoint_bytes(model)
    except backend.TrainingDiverged as exc:
        out.update(status="diverged", message=str(exc))
        out["summary"] = {"diverged_epoch": exc.epoch}
    except Exception as exc:  # noqa: BLE001 - a bad model is a row, not a crashed sweep
        out.update(status="error", message=f"{type(exc).__name__}: {exc}")
    out["seconds"] = time.perf_counter() - t0
    return out


class SweepSummary(dict[str, Any]):
    """Counts of one :func:`run_sweep` call: ``total``, ``skipped``, ``ok``,
    ``diverged``, ``error``, ``lost`` (worker deaths survived), ``seconds``."""


def _progress_bar(enabled: bool, total: int, initial: int) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="model", desc="sweep", smoothing=0.1)


def run_sweep(
    spec: SweepSpec,
    out_dir: str | os.PathLike[str],
    executor: Executor,
    *,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> SweepSummary:
    """Run every cell of ``spec`` not yet in ``out_dir`` on ``executor``.

    Results go to ``out_dir/results.parquet`` (see :mod:`rnnschur.sweep.results`)
    as models finish; a rerun skips completed cells. A cell whose worker died is
    resubmitted (up to :data:`MAX_LOST` times, then recorded as an error).

    Returns
    -------
    SweepSummary
    """
    say = log or (lambda _line: None)
    t0 = time.perf_counter()
    store = ResultStore(out_dir, spec)
    todo = [c for c in spec.cells if c.key not in store.completed]
    counts = SweepSummary(
        total=len(spec),
        skipped=len(spec) - len(todo),
        ok=0,
        diverged=0,
        error=0,
        lost=0,
    )
    say(f"{len(todo)} model(s) to run, {counts['skipped']} already done")
    bar = _progress_bar(progress and bool(todo), len(spec), counts["skipped"])
    lost: dict[str, int] = {}
    # Executors that lose every queued job with a dead worker (a broken process
    # pool) get only as many jobs as they run at once.
    window = executor.max_in_flight or len(todo)
    queue = collections.deque(todo)
    pending: dict[Any, Cell] = {}
    try:
        while queue or pending:
            while queue and len(pending) < window:
                c = queue.popleft()
                pending[executor.submit(run_cell, c.to_dict(), c.key)] = c
            for fut in executor.wait_any(pending):
                cell = pending.pop(fut)
                try:
                    outcome = fut.result()
                except Exception as exc:  # noqa: BLE001 - the job's failure is a row
                    if executor.is_lost(exc) and lost.get(cell.key, 0) < MAX_LOST:
                        lost[cell.key] = lost.get(cell.key, 0) + 1
                        counts["lost"] += 1
                        say(f"worker lost while running {cell.key}; resubmitting")
                        attempt = f"{cell.key}-retry{lost[cell.key]}"
                        pending[executor.submit(run_cell, cell.to_dict(), attempt)] = (
                            cell
                        )
                        continue
                    outcome = error_outcome(cell.key, exc)
                store.add(cell, outcome)
                counts[outcome["status"]] += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(
                        failed=counts["diverged"] + counts["error"], refresh=False
                    )
    finally:
        if bar is not None:
            bar.close()
        store.consolidate()
    counts["seconds"] = time.perf_counter() - t0
    return counts


def sweep(
    spec: SweepSpec | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    dask_local: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> SweepSummary:
    """Run a sweep: the library form of ``rnnschur sweep``.

    Parameters
    ----------
    spec : SweepSpec or path of a TOML spec
    out_dir : path
        Output folder (``results.parquet`` and the rest; see
        :mod:`rnnschur.sweep.results`).
    jobs, dask_local, scheduler
        At most one: local worker processes (default ``min(2, CPUs)``), a Dask
        ``LocalCluster`` of that many single-thread workers, or the address of a
        running Dask scheduler.
    progress : bool
        Progress bar (models done, failed, rate, ETA).
    log : callable, optional
        Receives status lines.

    Returns
    -------
    SweepSummary
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    with make_executor(jobs=jobs, dask_local=dask_local, scheduler=scheduler) as ex:
        if log is not None:
            log(f"{len(spec)} models; running on {ex.description}")
        return run_sweep(spec, out_dir, ex, progress=progress, log=log)
