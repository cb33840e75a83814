"""Where sweep jobs run: local worker processes or a Dask distributed cluster.

Both executors offer the same three operations, and :func:`~rnnschur.sweep.runner.
run_sweep` drives them with the same code:

* ``submit(fn, arg, key)`` → a future (``concurrent.futures.Future`` or
  ``distributed.Future``; both have ``result()``);
* ``wait_any(futures)`` → the futures that have finished (blocks until one has);
* ``is_lost(exc)`` → whether a future failed because its worker died (the job is then
  resubmitted) rather than because the job raised.

Every worker runs one job at a time with one thread per numerical library, so a model
is computed the same way (bitwise) whichever executor or worker runs it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
from collections.abc import Callable, Collection, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Self is typing.Self from Python 3.11 on
    from typing_extensions import Self

__all__ = [
    "DASK_WORKER_CONFIG",
    "WORKER_ENV",
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "make_executor",
]

#: Environment of every worker process: one thread per numerical library. The sweep
#: passes ``n_threads = 1`` to the core itself; these cover BLAS and Numba.
WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}

#: Dask worker settings of the LocalCluster: the statistical profiler (a stack sample
#: every 10 ms), the GIL monitor (every 1 ms), the 20 ms event-loop tick and the system
#: monitor take the GIL from the training thread (docs/sweeps.md, Throughput). Workers
#: started with ``dask worker`` take the same settings from the environment variables
#: ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``,
#: ``DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__GIL__ENABLED=False``,
#: ``DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s`` and
#: ``DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL=5s``. The client's own
#: scheduler (in this process) also gets them while the cluster starts: harmless.
DASK_WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}

_DASK_HINT = 'Dask executors need dask.distributed: pip install "rnnschur[dask]"'


class Executor:
    """Interface of the sweep executors (see the module docstring); a context
    manager that releases its workers on exit."""

    description = "executor"
    #: Jobs to keep submitted at once (None: all of them).
    max_in_flight: int | None = None

    def submit(self, fn: Callable[[Any], Any], arg: Any, key: str) -> Any:
        raise NotImplementedError

    def wait_any(self, futures: Collection[Any]) -> set[Any]:
        raise NotImplementedError

    def is_lost(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Set :data:`WORKER_ENV` while worker processes are spawned (they copy the
    environment at start, before NumPy loads its BLAS)."""
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    os.environ.update(WORKER_ENV)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LocalExecutor(Executor):
    """``jobs`` worker processes on this machine (``spawn`` start method).

    A worker that dies (killed, out of memory) breaks a ``ProcessPoolExecutor``: every
    job in the pool fails with ``BrokenProcessPool``. Those jobs count as lost, and the
    next ``submit`` starts a fresh pool. The sweep keeps only ``jobs`` jobs in the pool
    (:attr:`max_in_flight`), so a death costs the models being trained, not the queue.
    """

    def __init__(self, jobs: int) -> None:
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            msg = f"jobs must be a positive integer; got {jobs!r}"
            raise ValueError(msg)
        self.jobs = jobs
        # A dead worker fails every job in the pool, queued ones included.
        self.max_in_flight = jobs
        self.description = f"{jobs} local process{'es' * (jobs != 1)}"
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn")
        )

    def submit(
        self,
        fn: Callable[[Any], Any],
        arg: Any,
        key: str,  # noqa: ARG002 - the key names Dask tasks only
    ) -> concurrent.futures.Future[Any]:
        # Processes are spawned on demand inside submit, so the environment is set here.
        with _worker_environment():
            try:
                return self._pool.submit(fn, arg)
            except BrokenProcessPool:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
                return self._pool.submit(fn, arg)

    def wait_any(self, futures: Collection[Any]) -> set[Any]:
        done, _ = concurrent.futures.wait(
            futures, return_when=concurrent.futures.FIRST_COMPLETED
        )
        return done

    def is_lost(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _distributed() -> Any:
    """The module ``distributed`` (an optional extra)."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(_DASK_HINT) from exc
    return distributed


class DaskExecutor(Executor):
    """Jobs on a Dask distributed cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://HOST:8786``). Its workers should run
        one thread each (``dask worker ADDRESS --nthreads 1``) with the environment of
        :data:`WORKER_ENV` (Dask's nanny sets the BLAS variables by default).
    n_workers : int, optional
        Instead of ``scheduler``: start a ``LocalCluster`` of ``n_workers``
        single-thread worker processes on 127.0.0.1, closed with the executor.

    Dask reschedules the jobs of a worker that dies on the remaining workers; a job
    whose workers keep dying fails with ``KilledWorker``, which counts as lost.
    """

    def __init__(
        self, *, scheduler: str | None = None, n_workers: int | None = None
    ) -> None:
        if (scheduler is None) == (n_workers is None):
            msg = "give exactly one of scheduler (an address) and n_workers"
            raise ValueError(msg)
        distributed = _distributed()
        self._distributed = distributed
        self.cluster = None
        if scheduler is not None:
            if not isinstance(scheduler, str) or "://" not in scheduler:
                msg = f"scheduler must be an address like tcp://HOST:8786; got {scheduler!r}"
                raise ValueError(msg)
            self.client = distributed.Client(scheduler, timeout="30s")
            n = len(self.client.scheduler_info().get("workers", {}))
            self.description = f"Dask scheduler {scheduler} ({n} workers now)"
        else:
            if (
                not isinstance(n_workers, int)
                or isinstance(n_workers, bool)
                or n_workers < 1
            ):
                msg = f"n_workers must be a positive integer; got {n_workers!r}"
                raise ValueError(msg)
            import dask

            # The nannies hand the configuration current at their start to the workers.
            with dask.config.set(DASK_WORKER_CONFIG):
                self.cluster = distributed.LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    scheduler_port=0,
                    dashboard_address=None,
                    env=dict(WORKER_ENV),
                )
            self.client = distributed.Client(self.cluster)
            self.description = f"Dask LocalCluster ({n_workers} workers)"

    def submit(self, fn: Callable[[Any], Any], arg: Any, key: str) -> Any:
        return self.client.submit(fn, arg, key=f"rnnschur-sweep-{key}", pure=False)

    def wait_any(self, futures: Collection[Any]) -> set[Any]:
        done, _ = self._distributed.wait(list(futures), return_when="FIRST_COMPLETED")
        return set(done)

    def is_lost(self, exc: BaseException) -> bool:
        return isinstance(exc, self._distributed.KilledWorker)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(
    *,
    jobs: int | None = None,
    dask_local: int | None = None,
    scheduler: str | None = None,
) -> Executor:
    """The executor for the command line's ``--jobs``, ``--dask-local`` or
    ``--scheduler`` (at most one; default: one local process per CPU, at most 2)."""
    given = [x is not None for x in (jobs, dask_local, scheduler)]
    if sum(given) > 1:
        msg = "give at most one of jobs, dask_local and scheduler"
        raise ValueError(msg)
    if scheduler is not None:
        return DaskExecutor(scheduler=scheduler)
    if dask_local is not None:
        return DaskExecutor(n_workers=dask_local)
    return LocalExecutor(jobs if jobs is not None else min(2, os.cpu_count() or 1))
