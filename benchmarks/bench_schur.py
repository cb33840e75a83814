"""Ordered real Schur form: ``rnnschur.ordered_schur`` vs SciPy/LAPACK, float64.

Contenders, on ``W = randn(n, n)/sqrt(n)`` at n = 64, 72, 256, 1024, each at 1 and 2
BLAS threads (each its own process; timing rules: benchmarks/harness.py):

* ``ordered_schur`` - rnnschur.ordered_schur(W) (factorisation, standardisation,
  reordering by modulus, SchurForm with eigenvalues and block structure);
* ``scipy schur``   - scipy.linalg.schur(W) alone (unordered: a lower bound);
* ``scipy+dtrexc``  - scipy.linalg.schur(W), then the same ordering by modulus
  (same tie rule) with LAPACK dtrexc moves through scipy.linalg.lapack: block
  structure and moduli computed once, vectorised, then one dtrexc call per block
  that has to move.

    python benchmarks/bench_schur.py [--quick] [--json PATH]
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.linalg as sl
from scipy.linalg import lapack

from harness import Contender, Target
from rnnschur.schur import DEFAULT_RTOL, ordered_schur

SIZES = (64, 72, 256, 1024)
QUICK_SIZES = (72, 256, 1024)


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


def _matrix(n: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, n)) / np.sqrt(n)


def make(threads: int, n: int, how: str):
    del threads  # BLAS threads are set by the harness through the environment
    W = _matrix(n)
    fn = {
        "ordered_schur": ordered_schur,
        "scipy schur": sl.schur,
        "scipy+dtrexc": scipy_dtrexc_ordered,
    }[how]
    info = {}
    if how == "ordered_schur":
        f = ordered_schur(W)
        T_ref, _ = scipy_dtrexc_ordered(W)
        ref = np.sort(np.abs(np.linalg.eigvals(T_ref)))[::-1]
        info = {
            "method": f.method,
            "swaps": f.swaps,
            "residual": f.residual,
            "same_modulus_order_as_dtrexc": bool(
                np.allclose(np.abs(f.eigvals), ref, rtol=1e-8, atol=1e-12)
            ),
        }
    return (lambda: fn(W)), info


def contenders(quick: bool = False, max_threads: int = 2) -> list[Contender]:
    out = []
    for n in QUICK_SIZES if quick else SIZES:
        for how in ("ordered_schur", "scipy+dtrexc", "scipy schur"):
            for t in sorted({1, max_threads}):
                out.append(
                    Contender(
                        bench="schur",
                        case=f"ordered Schur n={n}",
                        name=how,
                        role="subject" if how == "ordered_schur" else "baseline",
                        factory="bench_schur:make",
                        kwargs={"n": n, "how": how},
                        threads=t,
                        # the Hessenberg + QR work of dgees, about 25 n^3 flops
                        flops=25.0 * n**3,
                        dtype="float64",
                    )
                )
    return out


def targets() -> list[Target]:
    out = [
        Target(f"ordered Schur n={n}", "scipy+dtrexc", 1.5, "ordered_schur")
        for n in (64, 72, 256)
    ]
    return [*out, Target("ordered Schur n=1024", "scipy+dtrexc", 1.0, "ordered_schur")]


if __name__ == "__main__":
    from run import main

    sys.exit(main(["--only", "schur", *sys.argv[1:]]))
