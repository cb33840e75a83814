"""Run independent jobs in worker processes, stopping them all at once on Ctrl-C or
SIGTERM.

Workers are spawned (no fork: the compiled core's thread pool and Numba do not
survive a fork) and ignore SIGINT: the parent decides when to stop. A Ctrl-C reaches
the whole process group, and workers that died on it would only make the pool hand
them the next job.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TypeVar

__all__ = ["Terminated", "run_in_processes"]

_T = TypeVar("_T")


class Terminated(Exception):
    """SIGTERM arrived while jobs were running in worker processes."""


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated


def run_in_processes(
    fn: Callable[[Any], _T],
    work: Sequence[Any],
    jobs: int,
    on_done: Callable[[_T], None],
    *,
    progress_desc: str | None = None,
) -> None:
    """Call ``fn(item)`` for every item of ``work`` in ``jobs`` spawned processes.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by reference).
    work : sequence
        Arguments, one call each; results arrive in completion order.
    jobs : int
        Worker processes.
    on_done : callable
        Receives each result in the parent as it arrives.
    progress_desc : str, optional
        Show a tqdm bar over the items with this description.

    Raises
    ------
    Terminated
        SIGTERM arrived; the workers were terminated at once.
    KeyboardInterrupt
        Ctrl-C; the workers were terminated at once.
    """
    ctx = multiprocessing.get_context("spawn")
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    bar: Any = None
    if progress_desc is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(work), desc=progress_desc, leave=True)
    pool = ctx.Pool(jobs, initializer=_worker_init)
    try:
        for result in pool.imap_unordered(fn, work):
            on_done(result)
            if bar is not None:
                bar.update(1)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
        signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
