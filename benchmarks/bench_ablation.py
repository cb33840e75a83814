"""Benchmark: batched Schur-coupling ablation vs a plain NumPy loop.

``ablate(forms, splits)`` (all 8 subsets, M models of width n, Numba kernel, JIT
compiled and warmed up before timing) against a NumPy loop that, for every model and
subset, builds Z_S(T) and computes Q @ Z @ Q.T (8 × 2 matrix products per model).

Timing: contenders interleaved, several blocks each, median; ratio from the one run.
Prints one table and writes JSON (default benchmarks/results/).

``--clock cpu`` times process CPU time (robust on a loaded machine; use it with
``OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1`` — it adds up threads, so it measures
single-thread efficiency, not the parallel speed-up).

Usage: python benchmarks/bench_ablation.py [--models 100] [--n 72] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np

import rnnschur
from rnnschur import ablate, ordered_schur, schur_split
from rnnschur.ablation import BLOCK_NAMES, DEFAULT_SUBSETS


def numpy_loop(forms, splits) -> np.ndarray:
    """Reference: 8 subsets × (Z_S(T), then Q @ Z @ Q.T) per model."""
    n = forms[0].n
    out = np.empty((len(forms), len(DEFAULT_SUBSETS), n, n))
    for m, (f, s) in enumerate(zip(forms, splits, strict=True)):
        masks = {"RR": s.RR, "CR": s.CR, "CC": s.CC}
        for k, sub in enumerate(DEFAULT_SUBSETS):
            Z = f.T.copy()
            for name in sub:
                Z[masks[name]] = 0.0
            out[m, k] = f.Q @ Z @ f.Q.T
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--n", type=int, default=72)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument(
        "--json",
        type=Path,
        default=Path(__file__).parent / "results" / "bench_ablation.json",
    )
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    rng = np.random.default_rng(0)
    n, M = args.n, args.models
    # Trained-RNN-like matrices: a rotation plus a non-normal perturbation.
    forms = []
    for _ in range(M):
        Qm, _ = np.linalg.qr(rng.standard_normal((n, n)))
        forms.append(ordered_schur(Qm + 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)))
    splits = [schur_split(f, 0.9) for f in forms]

    t0 = time.perf_counter()
    first = ablate(forms, splits)  # JIT compile (or load from cache) outside timing
    compile_s = time.perf_counter() - t0
    ref = numpy_loop(forms, splits)
    err = float(np.abs(first.W - ref).max() / max(1.0, np.abs(ref).max()))

    contenders = {
        "ablate (Numba)": lambda: ablate(forms, splits),
        "NumPy loop": lambda: numpy_loop(forms, splits),
    }
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(args.blocks):
        for name, fn in contenders.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
            time.sleep(0.3)  # let the other library's worker threads go idle
    med = {k: float(np.median(v)) for k, v in times.items()}
    ratio = med["NumPy loop"] / med["ablate (Numba)"]
    n_r = np.array([s.n_R for s in splits])
    print(
        f"{M} models, n = {n}, {len(BLOCK_NAMES)} blocks, 8 subsets; n_R mean {n_r.mean():.1f}"
    )
    print(f"{'contender':<16} {'median ms':>10}")
    for k, v in med.items():
        print(f"{k:<16} {1e3 * v:>10.2f}")
    print(
        f"speedup {ratio:.2f}x  (max rel. difference {err:.1e}; first call {compile_s:.2f} s)"
    )
    out = {
        "benchmark": "ablate",
        "machine": platform.platform(),
        "processor": platform.processor(),
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "clock": args.clock,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "numpy": np.__version__,
        "rnnschur": rnnschur.__version__,
        "models": M,
        "n": n,
        "n_R_mean": float(n_r.mean()),
        "median_ms": {k: 1e3 * v for k, v in med.items()},
        "speedup": ratio,
        "max_rel_difference": err,
        "first_call_s": compile_s,
        "blocks": args.blocks,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
