"""The one benchmark harness behind every script in benchmarks/ (see README.md there).

A *contender* is one way of doing one piece of work (a *case*): a factory
``"module:function"`` in this folder that builds the inputs and returns a
zero-argument callable. The parent never times anything itself; for every contender
it starts a fresh worker process (``python harness.py --worker SPEC``), waits for it,
and only then starts the next one, so no two busy processes ever run at once and no
library's idle worker threads are left spinning against another's.

Inside the worker:

1. thread counts are fixed before any import (``OPENBLAS/OMP/MKL/NUMBA_NUM_THREADS``;
   torch's factory calls ``torch.set_num_threads`` once);
2. the callable runs once untimed (imports, JIT compilation, workspace queries);
3. before *every* timed block, at least ``warmup`` seconds (default 0.12 s) of untimed
   calls of the same callable: a core that idled runs the next ~50 ms at about half
   speed on these virtual machines, and a worker that waited is idle;
4. ``blocks`` (>= 5) timed blocks of ``reps`` calls, ``reps`` chosen so that a block
   lasts about ``block_seconds``; the result is the median of the per-call block
   times, with the quartiles and min/max of the blocks as the spread.

The JSON schema (``SCHEMA``) is documented in benchmarks/README.md.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA = "rnnschur-bench/1"
THREAD_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
# Set on some processors for old OpenBLAS builds; they slow a current NumPy/SciPy
# (see benchmarks/README.md), so workers run without them and the run records it.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclasses.dataclass
class Contender:
    """One timed configuration.

    role: "subject" (rnnschur at its default dispatch), "variant" (rnnschur forced
    to another code path, e.g. AVX2 on an AVX-512 machine), "baseline" (what a user
    would otherwise run), "floor" (a lower bound such as writing the output) or
    "peak" (the roofline GEMMs).
    """

    bench: str
    case: str
    name: str
    role: str
    factory: str
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    threads: int = 1
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    flops: float | None = None
    dtype: str | None = None
    variant: str = ""

    @property
    def label(self) -> str:
        v = f" [{self.variant}]" if self.variant else ""
        return f"{self.name} {self.threads}t{v}"


@dataclasses.dataclass
class Target:
    """``best(baseline) / best(subject) >= minimum`` in ``case`` (bests over threads).

    With ``minimum=None`` the baseline is a floor and the ratio reported is the
    other way round, ``best(subject) / best(floor)``: how far above the floor.
    """

    case: str
    baseline: str
    minimum: float | None
    subject: str = "rnnschur"
    note: str = ""


@dataclasses.dataclass
class Settings:
    blocks: int = 7
    block_seconds: float = 0.2
    warmup: float = 0.12
    quick: bool = False
    timeout: float = 900.0  # per contender; a run past it is recorded as an error

    def __post_init__(self) -> None:
        if self.blocks < 5:
            msg = "blocks must be >= 5 (the spread needs them)"
            raise ValueError(msg)
        if self.warmup < 0.1:
            msg = "warmup must be >= 0.1 s (cores run slow after idling)"
            raise ValueError(msg)


# --------------------------------------------------------------------------- worker


def _quantile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def time_callable(
    fn: Callable[[], object], blocks: int, block_seconds: float, warmup: float
) -> dict[str, Any]:
    """Warm-up before every block, ``blocks`` timed blocks; seconds per call."""
    fn()  # untimed first call: imports, JIT, workspace queries

    def warm() -> float:
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= warmup:
                return dt / n

    per_call = warm()
    reps = max(1, round(block_seconds / per_call))
    times = []
    for _ in range(blocks):
        warm()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        times.append((time.perf_counter() - t0) / reps)
    return {
        "median_s": _quantile(times, 0.5),
        "q1_s": _quantile(times, 0.25),
        "q3_s": _quantile(times, 0.75),
        "min_s": min(times),
        "max_s": max(times),
        "blocks_s": times,
        "reps": reps,
    }


def _resolve(factory: str) -> Callable[..., Any]:
    mod, _, fn = factory.partition(":")
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return getattr(importlib.import_module(mod), fn)


def blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's view of the loaded BLAS/OpenMP pools ([] without it)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads")
    return [
        {k: d.get(k) for k in keep if k in d} | {"lib": Path(d["filepath"]).name}
        for d in threadpool_info()
    ]


def worker_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    made = _resolve(spec["factory"])(threads=spec["threads"], **spec["kwargs"])
    fn, info = made if isinstance(made, tuple) else (made, {})
    res = time_callable(fn, spec["blocks"], spec["block_seconds"], spec["warmup"])
    res["info"] = dict(info) | {"blas": blas_info()}
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")


# --------------------------------------------------------------------------- parent


def worker_env(c: Contender) -> dict[str, str]:
    env = dict(os.environ)
    for var in OPENBLAS_OVERRIDES:
        env.pop(var, None)
    for var in THREAD_VARS:
        env[var] = str(c.threads)
    env.update(c.env)
    return env


def run_contender(c: Contender, s: Settings) -> dict[str, Any]:
    """Time one contender in a fresh process; the parent waits idle meanwhile."""
    spec = {
        "factory": c.factory,
        "kwargs": c.kwargs,
        "threads": c.threads,
        "blocks": s.blocks,
        "block_seconds": s.block_seconds,
        "warmup": s.warmup,
    }
    row: dict[str, Any] = dataclasses.asdict(c) | {"label": c.label}
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / "harness.py"), "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            env=worker_env(c),
            check=False,
            timeout=s.timeout,
        )
    except subprocess.TimeoutExpired:  # the child is killed; the run goes on
        return row | {"error": f"timed out after {s.timeout:.0f} s"}
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return row | {"error": err}
    res = json.loads(lines[-1][len("RESULT ") :])
    if c.flops:
        res["gflops"] = c.flops / res["median_s"] / 1e9
    return row | res


def run_all(
    contenders: Sequence[Contender],
    s: Settings,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
) -> list[dict[str, Any]]:
    rows = []
    for i, c in enumerate(contenders, 1):
        t0 = time.perf_counter()
        r = run_contender(c, s)
        took = time.perf_counter() - t0
        what = r.get("error") or f"{1e3 * r['median_s']:.3f} ms"
        log(
            f"[{i}/{len(contenders)}] {c.bench} | {c.case} | {c.label}: {what} ({took:.0f} s)"
        )
        rows.append(r)
    return rows


def attach_peak(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Peak GF/s per dtype and thread count; every row gets its fraction of it.

    The peak is the GEMM's fastest block, not its median: a roofline is what the
    machine can do, and one slowed block of the GEMM (a noisy neighbour on these
    VMs) would otherwise put kernels above "100 % of peak".
    """
    peak: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["role"] == "peak" and "gflops" in r:
            fastest = r["gflops"] * r["median_s"] / r["min_s"]
            peak.setdefault(r["dtype"], {})[str(r["threads"])] = fastest
    for r in rows:
        p = peak.get(r.get("dtype") or "", {}).get(str(r["threads"]))
        if p and "gflops" in r:
            r["peak_fraction"] = r["gflops"] / p
    return peak


def _best(rows: list[dict[str, Any]], case: str, name: str, roles: set[str]):
    ok = [
        r
        for r in rows
        if r["case"] == case
        and r["name"] == name
        and r["role"] in roles
        and "median_s" in r
    ]
    return min(ok, key=lambda r: r["median_s"]) if ok else None


def evaluate_targets(
    rows: list[dict[str, Any]], targets: Sequence[Target]
) -> list[dict[str, Any]]:
    out = []
    for t in targets:
        sub = _best(rows, t.case, t.subject, {"subject", "variant"})
        base = _best(rows, t.case, t.baseline, {"baseline", "floor"})
        if not any(r["case"] == t.case for r in rows):
            continue  # the case was not run (--quick, --only)
        ratio = None
        if sub and base:
            ratio = base["median_s"] / sub["median_s"]
            if t.minimum is None:
                ratio = 1.0 / ratio
        out.append(
            dataclasses.asdict(t)
            | {
                "subject_label": sub and sub["label"],
                "baseline_label": base and base["label"],
                "ratio": ratio,
                "met": None
                if ratio is None or t.minimum is None
                else ratio >= t.minimum,
            }
        )
    return out


def speedups(rows: list[dict[str, Any]]) -> None:
    """``vs_best_subject``: row median / median of the case's fastest subject row."""
    for r in rows:
        best = [
            x["median_s"]
            for x in rows
            if x["case"] == r["case"] and x["role"] == "subject" and "median_s" in x
        ]
        if best and "median_s" in r and r["role"] != "peak":
            r["vs_best_subject"] = r["median_s"] / min(best)


# --------------------------------------------------------------------------- metadata


def _cpuinfo() -> dict[str, Any]:
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name":
                model = val.strip()
            elif key.strip() == "flags":
                flags = set(val.split())
    except OSError:
        pass
    return {
        "cpu": model,
        "avx2": "avx2" in flags,
        "fma": "fma" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_flags": sorted(f for f in flags if f.startswith("avx512")),
    }


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    info = _cpuinfo()
    simd = None
    try:
        from rnnschur import _core

        simd = _core.simd_level()
    except ImportError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return info | {
        "cpu_count": os.cpu_count(),
        "usable_cores": cores,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            d: _version(d)
            for d in ("rnnschur", "numpy", "scipy", "numba", "torch", "threadpoolctl")
        },
        "rnnschur_simd_level": simd,
        "openblas_env_removed": {
            v: os.environ[v] for v in OPENBLAS_OVERRIDES if v in os.environ
        },
        "loadavg_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def simd_levels() -> list[str]:
    """Levels the build can run here besides the default (``[]`` if none)."""
    try:
        from rnnschur import _core
    except ImportError:
        return []
    default = _core.simd_level()
    # Only an AVX-512 build has a second vector level worth forcing.
    if default.startswith("avx512") and _cpuinfo()["avx2"]:
        return ["avx2"]
    return []


# --------------------------------------------------------------------------- imports

# The one place where benchmarks reach into rnnschur's training internals (the torch
# loop replays rnnschur's batches and schedule); module moves are fixed here only.


def train_api():
    """Namespace of the training names the benchmarks use."""
    import types

    from rnnschur import make_task, metrics
    from rnnschur.constructions import init_params
    from rnnschur.training import (
        PAPER_CONFIG,
        curriculum_phases,
        default_config,
        evaluate,
        heldout_batch,
        save,
        train,
    )
    from rnnschur.training.step import BatchStream

    return types.SimpleNamespace(
        make_task=make_task,
        metrics=metrics,
        init_params=init_params,
        PAPER_CONFIG=PAPER_CONFIG,
        BatchStream=BatchStream,
        curriculum_phases=curriculum_phases,
        default_config=default_config,
        evaluate=evaluate,
        heldout_batch=heldout_batch,
        save=save,
        train=train,
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2])
    else:
        sys.exit("harness.py is a library and a worker; run benchmarks/run.py")
