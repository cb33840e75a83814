"""Batched Schur-coupling ablation: ``rnnschur.ablate`` vs NumPy loops, float64.

Work: all 8 subsets of {RR, CR, CC} for M = 100 models of width n = 72 (trained-RNN
like matrices: a rotation plus a non-normal perturbation), 33 MB of output.

Contenders (each its own process, 1 and 2 threads; rules: benchmarks/harness.py):

* ``ablate`` - ``rnnschur.ablate(forms, splits)`` (allocating, float64), and as
  variants with ``out=`` (preallocated) and float32 output;
* ``naive loop`` - per model and subset, ``Z_S(T)`` then ``Q @ Z @ Q.T``;
* ``block loop`` - what a competent user writes from linearity and the block
  structure: per model ``C_RR = Q_R N_RR Q_Rᵀ``, ``C_CR = Q_R T_{C→R} Q_Cᵀ``,
  ``C_CC = Q_C N_CC Q_Cᵀ`` (cheaper association order), then all 8 subsets as
  ``W − sel @ C`` written straight into the result;
* floors - an allocating copy of an array of the output's size, and a copy into a
  preallocated one: no ablation can write its result faster.

    python benchmarks/bench_ablation.py [--quick] [--json PATH]
"""

from __future__ import annotations

import sys

from harness import Contender, Target

M_MODELS = 100
N = 72
CASE = f"ablate 8 subsets x {M_MODELS} models n={N}"


def _forms(M: int = M_MODELS, n: int = N):
    import numpy as np

    from rnnschur import ordered_schur, schur_split

    rng = np.random.default_rng(0)
    forms = []
    for _ in range(M):
        Qm, _ = np.linalg.qr(rng.standard_normal((n, n)))
        forms.append(ordered_schur(Qm + 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)))
    return forms, [schur_split(f, 0.9) for f in forms]


def naive_loop(forms, splits):
    """8 subsets × (Z_S(T), then Q @ Z @ Q.T) per model."""
    import numpy as np

    from rnnschur.ablation import DEFAULT_SUBSETS

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


def block_loop(forms, splits):
    """Linearity + block structure: three block products per model, then 8 sums."""
    import numpy as np

    from rnnschur.ablation import BLOCK_NAMES, DEFAULT_SUBSETS

    sel = np.array([[b in sub for b in BLOCK_NAMES] for sub in DEFAULT_SUBSETS], float)
    n = forms[0].n
    S = len(DEFAULT_SUBSETS)
    out = np.empty((len(forms), S, n, n))
    C = np.empty((3, n, n))
    for m, (f, s) in enumerate(zip(forms, splits, strict=True)):
        r = s.n_R
        QR, QC = f.Q[:, :r], f.Q[:, r:]
        NRR = f.T[:r, :r] * s.RR[:r, :r]
        NCC = f.T[r:, r:] * s.CC[r:, r:]
        np.matmul(QR @ NRR, QR.T, out=C[0])
        TCR = f.T[:r, r:]
        if r <= n - r:
            np.matmul(QR, TCR @ QC.T, out=C[1])
        else:
            np.matmul(QR @ TCR, QC.T, out=C[1])
        np.matmul(QC @ NCC, QC.T, out=C[2])
        o = out[m].reshape(S, n * n)
        np.matmul(sel, C.reshape(3, n * n), out=o)
        np.subtract(f.W.reshape(1, n * n), o, out=o)
    return out


def make(threads: int, how: str):
    import numpy as np

    from rnnschur import ablate

    del threads  # Numba and BLAS threads are set by the harness (environment)
    forms, splits = _forms()
    shape = (M_MODELS, 8, N, N)
    ref = naive_loop(forms, splits)
    if how == "ablate":
        fn = lambda: ablate(forms, splits)
    elif how == "ablate out=":
        buf = np.empty(shape)
        fn = lambda: ablate(forms, splits, out=buf)
    elif how == "ablate float32":
        fn = lambda: ablate(forms, splits, dtype=np.float32)
    elif how == "ablate float32 out=":
        buf32 = np.empty(shape, np.float32)
        fn = lambda: ablate(forms, splits, out=buf32)
    elif how == "naive loop":
        fn = lambda: naive_loop(forms, splits)
    elif how == "block loop":
        fn = lambda: block_loop(forms, splits)
    elif how == "copy (allocating)":
        fn = ref.copy
    elif how == "copy into preallocated":
        dst = np.empty_like(ref)
        fn = lambda: np.copyto(dst, ref)
    else:
        raise ValueError(how)
    info = {"n_R_mean": float(np.mean([s.n_R for s in splits])), "bytes": ref.nbytes}
    if how.startswith(("ablate", "block")):
        got = fn()
        W = got if isinstance(got, np.ndarray) else got.W
        err = float(np.abs(W - ref).max())
        info["max_abs_diff_vs_naive"] = err
        if "float32" not in how and err > 1e-12:
            msg = f"{how}: results differ from the naive loop by {err:.1e} > 1e-12"
            raise AssertionError(msg)
    return fn, info


CONTENDERS = {
    "ablate": "subject",
    "ablate out=": "variant",
    "ablate float32": "variant",
    "ablate float32 out=": "variant",
    "naive loop": "baseline",
    "block loop": "baseline",
    "copy (allocating)": "floor",
    "copy into preallocated": "floor",
}


def contenders(quick: bool = False, max_threads: int = 2) -> list[Contender]:
    out = []
    for how, role in CONTENDERS.items():
        if quick and how in ("ablate float32",):
            continue
        for t in sorted({1, max_threads}):
            out.append(
                Contender(
                    bench="ablation",
                    case=CASE,
                    name=how,
                    role=role,
                    factory="bench_ablation:make",
                    kwargs={"how": how},
                    threads=t,
                )
            )
    return out


def targets() -> list[Target]:
    return [
        Target(CASE, "naive loop", 5.0, "ablate"),
        Target(CASE, "block loop", 2.5, "ablate"),
        Target(CASE, "copy (allocating)", None, "ablate", "ablate ÷ floor"),
        Target(
            CASE, "copy into preallocated", None, "ablate out=", "ablate out= ÷ floor"
        ),
    ]


if __name__ == "__main__":
    from run import main

    sys.exit(main(["--only", "ablation", *sys.argv[1:]]))
