"""Numba kernels of the batched Schur-coupling ablation (private; see ablation.py).

Linearity: with ``C_b = Q N_b Qᵀ`` for the three coupling blocks ``b ∈ {RR, CR, CC}``,
every subset ``S`` gives ``W̃(S) = base − Σ_{b∈S} C_b``. The kernel forms the three
``C_b`` once per model (6 small BLAS products, in the cheaper association order) and
then writes all subsets in one branch-free pass; models run in parallel (``prange``).
The products go to BLAS through Numba (SciPy's OpenBLAS). At these sizes
(m·n·k < 2·65536·4) OpenBLAS runs each product on the calling thread, so the two
levels of threading do not compete; what does compete is another library's idle
worker threads still spinning after a call (see benchmarks/bench_ablation.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Only FMA contraction; no reassociation, so NaN/inf semantics and the order of the
# subtractions are kept.
_FASTMATH = {"contract"}


@njit(cache=True, nogil=True)
def _split_couplings(t, blk, n_R, g):
    """Dense N_RR (n_R, n_R), N_CR (n_R, n_C), N_CC (n_C, n_C) and their squared norms.

    ``blk`` numbers the diagonal blocks, so row i's couplings start at the first
    column of the next block, ``i + 1`` or ``i + 2``. The squared norms are of
    ``g·T`` (``g`` a power of two keeping them finite for any finite ``T``).
    """
    n = t.shape[0]
    n_C = n - n_R
    nrr = np.zeros((n_R, n_R))
    ncr = np.zeros((n_R, n_C))
    ncc = np.zeros((n_C, n_C))
    s0 = 0.0  # local accumulators: no store-to-memory dependency chain
    s1 = 0.0
    s2 = 0.0
    tsq = 0.0
    for i in range(n):
        row = t[i]
        j0 = i + 1
        while j0 < n and blk[j0] == blk[i]:
            j0 += 1
        for j in range(max(i - 1, 0), j0):
            v = row[j] * g
            tsq += v * v
        if i < n_R:
            out = nrr[i]
            for j in range(j0, n_R):
                v = row[j]
                out[j] = v
                v *= g
                s0 += v * v
            out = ncr[i]
            for j in range(max(j0, n_R), n):
                v = row[j]
                out[j - n_R] = v
                v *= g
                s1 += v * v
        else:
            out = ncc[i - n_R]
            for j in range(j0, n):
                v = row[j]
                out[j - n_R] = v
                v *= g
                s2 += v * v
    sq = np.array([s0, s1, s2])
    tsq += s0 + s1 + s2
    return nrr, ncr, ncc, sq, tsq


@njit(cache=True, nogil=True)
def _contributions(q, t, blk, n_R, with_b, g):
    """C[0..2] = Q N_b Qᵀ for b = RR, CR, CC; C[3] = Q B Qᵀ if with_b."""
    n = q.shape[0]
    n_C = n - n_R
    nrr, ncr, ncc, sq, tsq = _split_couplings(t, blk, n_R, g)
    C = np.empty((4 if with_b else 3, n, n))
    qr = np.ascontiguousarray(q[:, :n_R])
    qc = np.ascontiguousarray(q[:, n_R:])
    # A block with no mass (or an empty side) contributes exactly zero.
    if sq[0] > 0.0:
        C[0] = (qr @ nrr) @ qr.T
    else:
        C[0] = 0.0
    if sq[1] > 0.0:
        # Associate so that the inner dimension of the big product is min(n_R, n_C).
        if n_R <= n_C:
            C[1] = qr @ (ncr @ qc.T)
        else:
            C[1] = (qr @ ncr) @ qc.T
    else:
        C[1] = 0.0
    if sq[2] > 0.0:
        C[2] = (qc @ ncc) @ qc.T
    else:
        C[2] = 0.0
    if with_b:
        qb = np.zeros((n, n))
        for j in range(n):
            for k in range(max(0, j - 1), min(n, j + 2)):
                if blk[k] == blk[j]:
                    v = t[k, j]
                    if v != 0.0:
                        for i in range(n):
                            qb[i, j] += q[i, k] * v
        C[3] = qb @ q.T
    return C, sq, tsq


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def ablate_batch(Q, T, base, blk, n_R, sel, use_w, out, mass, g):
    """Fill ``out[m, s]`` and ``mass[m, s]`` for models m and subsets s.

    Q, T, base : (M, n, n) float64, C-contiguous. ``base`` is W when ``use_w``.
    blk : (M, n) int64 block number per Schur position; n_R : (M,) int64.
    sel : (S, 3) float64 in {0, 1}: subset s removes block b iff sel[s, b] == 1.
    use_w : bool; True: out = W − Σ_{b∈S} C_b, False: out = Q B Qᵀ + Σ_{b∉S} C_b.
    out : (M, S, n, n) float64 or float32, C-contiguous (computed in float64, then
    rounded once); mass : (M, S) float64 (‖ΔT‖_F / ‖T‖_F).
    g : (M,) float64 powers of two; the masses are ratios of norms of g[m]·T[m].
    """
    M = Q.shape[0]
    n = Q.shape[1]
    S = sel.shape[0]
    nn = n * n
    for m in prange(M):
        C, sq, tsq = _contributions(Q[m], T[m], blk[m], n_R[m], not use_w, g[m])
        # Linear views; one pass over the elements writes all S subsets, so the
        # three contributions are read once per model, not once per subset.
        c0 = C[0].reshape(nn)
        c1 = C[1].reshape(nn)
        c2 = C[2].reshape(nn)
        o = out[m].reshape((S, nn))
        if use_w:
            w = base[m].reshape(nn)
            for k in range(nn):
                x = w[k]
                y0 = c0[k]
                y1 = c1[k]
                y2 = c2[k]
                for s in range(S):
                    o[s, k] = x - sel[s, 0] * y0 - sel[s, 1] * y1 - sel[s, 2] * y2
        else:
            cb = C[3].reshape(nn)
            for k in range(nn):
                x = cb[k]
                y0 = c0[k]
                y1 = c1[k]
                y2 = c2[k]
                for s in range(S):
                    o[s, k] = (
                        x
                        + (1.0 - sel[s, 0]) * y0
                        + (1.0 - sel[s, 1]) * y1
                        + (1.0 - sel[s, 2]) * y2
                    )
        for s in range(S):
            removed = sel[s, 0] * sq[0] + sel[s, 1] * sq[1] + sel[s, 2] * sq[2]
            mass[m, s] = np.sqrt(removed / tsq) if tsq > 0.0 else 0.0
