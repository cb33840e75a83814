"""``rnnschur sweep``: the command-line front of :func:`~rnnschur.sweep.run_sweep`."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Any, NoReturn

from ..cli_types import positive_int

__all__ = ["add_sweep_parser", "cmd_sweep"]


def add_sweep_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Declare ``rnnschur sweep``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sweep",
        help="train and diagnose a grid of models (local processes or Dask)",
        description=(
            "Expand SPEC.toml into models, train each, take its 8-subset Schur "
            "ablation table on held-out data, and collect everything in "
            "OUT/results.parquet (one row per model x subset). Finished models are "
            "kept: run the same command again to resume. See docs/sweeps.md for the "
            "spec format."
        ),
    )
    p.add_argument("spec", metavar="SPEC.toml", help="sweep specification")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs",
        type=positive_int,
        metavar="N",
        help="N local worker processes (default: min(2, CPUs))",
    )
    where.add_argument(
        "--dask-local",
        type=positive_int,
        metavar="N",
        help="start a Dask LocalCluster of N single-thread workers on 127.0.0.1",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="connect to a running Dask scheduler, e.g. tcp://HOST:8786",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)
    return p


class _Terminated(BaseException):
    """SIGTERM arrived during the sweep (a BaseException, like KeyboardInterrupt, so
    that no handler of job failures records it as a failed model)."""


def _raise_terminated(_signum: int, _frame: FrameType | None) -> NoReturn:
    raise _Terminated


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``rnnschur sweep``; exit code 1 if any model ended in an error."""
    from .executors import make_executor
    from .results import require_pyarrow
    from .runner import run_sweep
    from .spec import SpecError, load_spec

    def say(line: str) -> None:
        print(f"rnnschur sweep: {line}", file=sys.stderr)

    try:
        spec = load_spec(args.spec)
        require_pyarrow()  # before any model trains: the results need it
    except (SpecError, OSError, ImportError) as exc:
        say(str(exc))
        return 2
    try:
        executor = make_executor(
            jobs=args.jobs, dask_local=args.dask_local, scheduler=args.scheduler
        )
    except (ImportError, ValueError, OSError) as exc:
        say(str(exc))
        return 2
    say(f"{len(spec)} models in {args.spec}; running on {executor.description}")
    resume = f"finished models are kept in {args.out}: rerun to resume"
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with executor:
            s = run_sweep(
                spec, args.out, executor, progress=not args.no_progress, log=say
            )
    except SpecError as exc:
        say(str(exc))
        return 2
    except KeyboardInterrupt:
        say(f"interrupted; {resume}")
        return 130
    except _Terminated:
        say(f"terminated; {resume}")
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    rate = 3600 * (s["total"] - s["skipped"]) / max(s["seconds"], 1e-9)
    say(
        f"done in {s['seconds']:.1f} s ({rate:.0f} models/h): {s['ok']} ok, "
        f"{s['diverged']} diverged, {s['error']} errors, {s['skipped']} skipped, "
        f"{s['lost']} lost to dead workers and rerun; table: {args.out}/results.parquet"
    )
    return 1 if s["error"] else 0
