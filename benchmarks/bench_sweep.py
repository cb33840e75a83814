"""Sweep throughput: models per hour on local processes and on Dask, and Dask's overhead.

Usage::

    python benchmarks/bench_sweep.py [--workers 2] [--models 8] [--rounds 5]
        [--hidden 64] [--json out.json]

Each block runs a sweep of ``--models`` flip-flop models in the paper setting
(rnnschur's default flip-flop config: 30 epochs × 128 Adam steps, batch 64,
``default_config("flipflop")``, dense orthogonal, Nh = 64), each trained and then
ablated (8 subsets on 512 held-out sequences), one core thread per model, on
``--workers`` worker processes:

* ``local``: :class:`rnnschur.sweep.LocalExecutor` (``rnnschur sweep --jobs N``);
* ``dask``: :class:`rnnschur.sweep.DaskExecutor` with a ``LocalCluster`` of N
  single-thread workers (``rnnschur sweep --dask-local N``).

Every block runs in its own process: start the executor, warm it up with an untimed
sweep of one model per worker (imports, Numba cache loads), then time one sweep of
``--models`` models into a fresh folder (everything the sweep does: submission,
training, ablation, checkpoints, part files and results.parquet). Local and Dask
blocks alternate, ``--rounds`` of each; medians and ranges are reported. The Dask
overhead per model is the difference of the median wall times per model, relative to
the local one. On a shared machine the wall time moves with the other processes' load,
so the benchmark also reports the worker time spent outside the jobs per model
(``workers × wall − Σ job seconds``, over the models): dispatch, result transfer and
idle workers at the end of the block, which is where an executor's overhead lives. Start-up of the executor itself (spawning processes, the cluster) is
not in the timed block: it is paid once per sweep, not per model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _spec(models: int, hidden: int, base_seed: int):
    from rnnschur.sweep import parse_spec

    return parse_spec(
        {
            "base_seed": base_seed,
            "seeds": models,
            "diagnose": {"eval_size": 512},
            "grid": [
                {
                    "task": "flipflop",
                    "construction": "dense_orthogonal",
                    "hidden": hidden,
                }
            ],
        }
    )


def block(kind: str, workers: int, models: int, hidden: int) -> dict:
    """One timed block in this process (see the module docstring)."""
    from rnnschur.sweep import DaskExecutor, LocalExecutor, run_sweep

    ex = LocalExecutor(workers) if kind == "local" else DaskExecutor(n_workers=workers)
    with ex, tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        run_sweep(_spec(workers, hidden, 1), Path(tmp) / "warm", ex, progress=False)
        spec = _spec(models, hidden, 0)
        t0 = time.perf_counter()
        summary = run_sweep(spec, Path(tmp) / "timed", ex, progress=False)
        wall = time.perf_counter() - t0
        runs = [
            json.loads(line)
            for line in (Path(tmp) / "timed" / "runs.jsonl").read_text().splitlines()
        ]
    if summary["ok"] != models:
        msg = f"{kind}: only {summary['ok']} of {models} models finished ok"
        raise RuntimeError(msg)
    return {
        "kind": kind,
        "wall": wall,
        "job_seconds": statistics.median(r["seconds"] for r in runs),
        "job_sum": sum(r["seconds"] for r in runs),
    }


def _spawn(kind: str, args) -> dict:
    cmd = [sys.executable, __file__, "--block", kind]
    cmd += ["--workers", str(args.workers), "--models", str(args.models)]
    cmd += ["--hidden", str(args.hidden)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run(args) -> dict:
    blocks: dict[str, list[dict]] = {"local": [], "dask": []}
    for r in range(args.rounds):
        for kind in ("local", "dask") if r % 2 == 0 else ("dask", "local"):
            blocks[kind].append(_spawn(kind, args))
            time.sleep(1.0)
    result = {"workers": args.workers, "models": args.models, "hidden": args.hidden}
    for kind, bs in blocks.items():
        per_model = [b["wall"] / args.models for b in bs]
        # Worker time not spent inside run_cell, per model: dispatch, transfer of
        # the result, and workers idling at the end of the block. Unlike the wall
        # time it hardly moves when other processes slow the training down.
        outside = [(args.workers * b["wall"] - b["job_sum"]) / args.models for b in bs]
        result[kind] = {
            "wall_per_model": _stats(per_model),
            "models_per_hour": _stats([3600 / p for p in per_model]),
            "job_seconds": _stats([b["job_seconds"] for b in bs]),
            "outside_job_per_model": _stats(outside),
        }
    loc = result["local"]["wall_per_model"]["median"]
    dsk = result["dask"]["wall_per_model"]["median"]
    result["dask_overhead_per_model"] = dsk - loc
    result["dask_overhead_fraction"] = (dsk - loc) / loc
    extra = (
        result["dask"]["outside_job_per_model"]["median"]
        - result["local"]["outside_job_per_model"]["median"]
    )
    # per worker-second of a model: the outside time is spread over the workers
    result["dask_extra_outside_job_fraction"] = extra / (args.workers * loc)
    return result


def _print(result: dict) -> None:
    print(
        f"flip-flop paper setting, Nh = {result['hidden']}, {result['models']} models "
        f"per block on {result['workers']} worker processes (1 thread each)"
    )
    print(
        f"{'executor':<8} {'models/h':>26} {'wall s/model':>24} {'job s (median)':>16}"
    )
    for kind in ("local", "dask"):
        r = result[kind]
        mph, wpm, job = r["models_per_hour"], r["wall_per_model"], r["job_seconds"]
        print(
            f"{kind:<8} {mph['median']:>10.0f} [{mph['min']:.0f}, {mph['max']:.0f}]"
            f"{wpm['median']:>12.3f} [{wpm['min']:.3f}, {wpm['max']:.3f}]"
            f"{job['median']:>16.3f}"
            f"{r['outside_job_per_model']['median']:>22.3f}"
        )
    print(
        f"Dask overhead per model: {result['dask_overhead_per_model'] * 1e3:+.1f} ms "
        f"({100 * result['dask_overhead_fraction']:+.2f} % of the local wall time "
        "per model; medians)"
    )
    print(
        "Dask's extra worker time outside the jobs: "
        f"{100 * result['dask_extra_outside_job_fraction']:+.2f} % of the local "
        "worker time per model (medians; robust to load from other processes)"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--models", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--json", default=None)
    p.add_argument("--block", choices=("local", "dask"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.block:
        print(json.dumps(block(args.block, args.workers, args.models, args.hidden)))
        return 0
    result = run(args)
    _print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
