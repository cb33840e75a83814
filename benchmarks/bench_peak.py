"""Measured roofline: large GEMMs through NumPy's OpenBLAS at 1 and 2 threads.

Every kernel's GF/s is reported as a fraction of the GEMM rate of its dtype at its
thread count (``peak_fraction`` in the JSON, ``% peak`` in the table). A GEMM of this
size runs at the practical limit of the cores: FMA units fed from cache-blocked
panels, which no recurrent kernel with a dependency chain through time can beat.

    python benchmarks/bench_peak.py [--quick] [--json PATH]
"""

from __future__ import annotations

import sys

from harness import Contender

N_GEMM = {"float32": 1536, "float64": 1024}


def make_gemm(threads: int, dtype: str, n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype)

    def gemm():
        np.matmul(a, b, out=c)

    return gemm, {"threads": threads, "n": n}


def contenders(quick: bool = False, max_threads: int = 2) -> list[Contender]:
    del quick
    out = []
    for dtype, n in N_GEMM.items():
        for t in sorted({1, max_threads}):
            out.append(
                Contender(
                    bench="peak",
                    case=f"GEMM {n}^3 {dtype}",
                    name="numpy",
                    role="peak",
                    factory="bench_peak:make_gemm",
                    kwargs={"dtype": dtype, "n": n},
                    threads=t,
                    flops=2.0 * n**3,
                    dtype=dtype,
                )
            )
    return out


if __name__ == "__main__":
    from run import main

    sys.exit(main(["--only", "peak", *sys.argv[1:]]))
