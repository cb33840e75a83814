"""A Dask scheduler and workers started from the command line (``dask scheduler``,
``dask worker``) on 127.0.0.1, for tests and benchmarks; torn down by process id."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rnnschur.sweep.executors import WORKER_ENV


def _dask_command() -> str:
    exe = Path(sys.executable).parent / "dask"
    return str(exe) if exe.exists() else "dask"


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the process group that ``proc`` leads (it was started in its own
    session), then make sure it is gone."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def kill_worker(proc: subprocess.Popen) -> None:
    """SIGKILL a ``dask worker`` (nanny and worker process): no clean shutdown."""
    _stop(proc, signal.SIGKILL)


@contextlib.contextmanager
def dask_cli_cluster(n_workers: int, workdir: Path) -> Iterator[tuple[str, list]]:
    """Yield ``(address, worker_processes)`` of a scheduler with ``n_workers``
    single-thread workers, each started as its own process group."""
    workdir.mkdir(parents=True, exist_ok=True)
    dask = _dask_command()
    sched_file = workdir / "scheduler.json"
    env = {**os.environ, **WORKER_ENV}
    procs: list[subprocess.Popen] = []

    def start(args: list[str], log: str) -> subprocess.Popen:
        with (workdir / log).open("w") as fh:
            p = subprocess.Popen(
                args,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        procs.append(p)
        return p

    try:
        start(
            [
                *(dask, "scheduler", "--host", "127.0.0.1", "--port", "0"),
                *("--no-dashboard", "--scheduler-file", str(sched_file)),
            ],
            "scheduler.log",
        )
        address = _wait_for_address(sched_file, procs[0])
        workers = [
            start(
                [
                    *(dask, "worker", address, "--nthreads", "1", "--nworkers", "1"),
                    *("--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}"),
                    *("--local-directory", str(workdir / f"w{i}")),
                ],
                f"worker{i}.log",
            )
            for i in range(n_workers)
        ]
        _wait_for_workers(address, n_workers)
        yield address, workers
    finally:
        for p in reversed(procs):
            _stop(p)


def _wait_for_address(path: Path, proc: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"dask scheduler exited with code {proc.returncode}"
            raise RuntimeError(msg)
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            return json.loads(path.read_text())["address"]
        time.sleep(0.2)
    msg = "dask scheduler did not write its address in time"
    raise TimeoutError(msg)


def _wait_for_workers(address: str, n: int, timeout: float = 120) -> None:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(n, timeout=timeout)
