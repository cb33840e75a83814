"""Benchmark: ordered real Schur form vs SciPy/LAPACK.

Contenders, on W = randn(n, n)/sqrt(n) at n = 64, 72, 256, 1024:

* ``ordered_schur``  - rnnschur.ordered_schur(W) (factorisation, standardisation,
  reordering by modulus, SchurForm with eigenvalues and block structure);
* ``scipy schur``    - scipy.linalg.schur(W) alone (unordered);
* ``scipy+dtrexc``   - scipy.linalg.schur(W), then the same ordering by modulus
  (same tie rule) with LAPACK dtrexc moves through scipy.linalg.lapack: block
  structure and moduli computed once, vectorised, then one dtrexc call per block
  that has to move.

Timing: contenders interleaved, several blocks each, median per call; ratios from
the one run. Prints one table and writes JSON (default benchmarks/results/).

``--clock cpu`` times process CPU time instead of wall time: robust on a loaded
machine, meaningful only with single-threaded BLAS (``OPENBLAS_NUM_THREADS=1``).

Usage: python benchmarks/bench_schur.py [--quick] [--clock wall|cpu] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.linalg as sl
from scipy.linalg import lapack

import rnnschur
from rnnschur.schur import DEFAULT_RTOL, ordered_schur


def _blocks(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = T.shape[0]
    sub = np.zeros(n, dtype=bool)
    sub[:-1] = np.diag(T, -1) != 0
    starts = []
    i = 0
    nz = np.flatnonzero(sub)
    nzset = set(nz.tolist())
    while i < n:
        starts.append(i)
        i += 2 if i in nzset else 1
    starts = np.array(starts)
    sizes = np.diff(np.append(starts, n))
    return starts, sizes


def scipy_dtrexc_ordered(W: np.ndarray, rtol: float = DEFAULT_RTOL):
    """scipy.linalg.schur + dtrexc moves into order of non-increasing modulus."""
    n = W.shape[0]
    # einsum, not np.linalg.norm: no NumPy-BLAS threads left spinning against dgees.
    atol = n * np.finfo(float).eps * np.sqrt(np.einsum("ij,ij->", W, W))
    T, Z = sl.schur(W)
    T = np.asfortranarray(T)
    Z = np.asfortranarray(Z)
    starts, sizes = _blocks(T)
    d = np.diag(T)[starts]
    off = np.zeros(starts.size)
    two = sizes == 2
    off[two] = np.sqrt(
        np.abs(T[starts[two], starts[two] + 1] * T[starts[two] + 1, starts[two]])
    )
    mod = np.hypot(d, off)
    # Same tie rule as rnnschur: clusters of moduli, stable by cluster.
    order = np.argsort(-mod, kind="stable")
    gaps = mod[order[:-1]] - mod[order[1:]] > rtol * mod[order[:-1]] + atol
    key = np.empty(mod.size, dtype=np.int64)
    key[order] = np.concatenate([[0], np.cumsum(gaps)])
    target = np.argsort(key, kind="stable")
    cur = list(range(starts.size))  # current order of original block ids
    size = sizes.tolist()
    pos = 0
    for p, b in enumerate(target.tolist()):
        idx = cur.index(b, p)
        if idx != p:
            src = pos + sum(size[c] for c in cur[p:idx])
            T, Z, info = lapack.dtrexc(
                T, Z, src + 1, pos + 1, overwrite_a=1, overwrite_q=1
            )
            if info != 0:
                msg = f"dtrexc failed: info={info}"
                raise RuntimeError(msg)
            cur.insert(p, cur.pop(idx))
        pos += size[b]
    return T, Z


def _time_block(fn, W, reps, clock):
    t0 = clock()
    for _ in range(reps):
        fn(W)
    return (clock() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--sizes", type=int, nargs="*", default=[64, 72, 256, 1024])
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument(
        "--json",
        type=Path,
        default=Path(__file__).parent / "results" / "bench_schur.json",
    )
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    if args.clock == "cpu" and os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        print(
            "warning: --clock cpu without OPENBLAS_NUM_THREADS=1 adds up BLAS threads"
        )
    rng = np.random.default_rng(0)
    contenders = {
        "ordered_schur": ordered_schur,
        "scipy schur": sl.schur,
        "scipy+dtrexc": scipy_dtrexc_ordered,
    }
    rows = []
    for n in args.sizes:
        W = rng.standard_normal((n, n)) / np.sqrt(n)
        # Sanity: both ordered results are valid and have the same eigenvalue order.
        f = ordered_schur(W)
        T_ref, _ = scipy_dtrexc_ordered(W)
        mod_ref = np.abs(rnnschur._core.schur_blocks(np.asfortranarray(T_ref))[2])
        assert f.residual < 1e-12
        same_order = bool(np.allclose(np.abs(f.eigvals), mod_ref, rtol=1e-8, atol=0))
        reps = {64: 20, 72: 20, 256: 3}.get(n, 1)
        blocks = {64: 9, 72: 9, 256: 7}.get(n, 3)
        if args.quick:
            reps = max(1, reps // 4)
            blocks = max(3, blocks // 3)
        for fn in contenders.values():  # warm up (imports, workspace queries, JIT)
            fn(W)
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(blocks):
            for name, fn in contenders.items():
                times[name].append(_time_block(fn, W, reps, clock))
                time.sleep(0.05 if n < 1000 else 0.3)
        med = {k: float(np.median(v)) for k, v in times.items()}
        rows.append(
            {
                "n": n,
                "median_ms": {k: 1e3 * v for k, v in med.items()},
                "speedup_vs_scipy_dtrexc": med["scipy+dtrexc"] / med["ordered_schur"],
                "speedup_vs_scipy_schur": med["scipy schur"] / med["ordered_schur"],
                "swaps": int(f.swaps),
                "method": f.method,
                "same_modulus_order_as_dtrexc": same_order,
                "reps": reps,
                "blocks": blocks,
            }
        )
    print(
        f"clock: {args.clock}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
    hdr = (
        f"{'n':>5} {'ordered_schur':>14} {'scipy schur':>12} {'scipy+dtrexc':>13} "
        f"{'vs dtrexc':>10} {'vs schur':>9} {'swaps':>6} {'method':>7}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        m = r["median_ms"]
        print(
            f"{r['n']:>5} {m['ordered_schur']:>11.3f} ms {m['scipy schur']:>9.3f} ms "
            f"{m['scipy+dtrexc']:>10.3f} ms {r['speedup_vs_scipy_dtrexc']:>9.2f}x "
            f"{r['speedup_vs_scipy_schur']:>8.2f}x {r['swaps']:>6} {r['method']:>7}"
        )
    out = {
        "benchmark": "ordered_schur",
        "machine": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "rnnschur": rnnschur.__version__,
        "clock": args.clock,
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
