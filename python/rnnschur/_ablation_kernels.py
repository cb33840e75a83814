"""Numba kernels of the batched Schur-coupling ablation (private; see ablation.py).

Linearity: with ``C_b = Q N_b Qᵀ`` for the three coupling blocks ``b ∈ {RR, CR, CC}``,
every subset ``S`` gives ``W̃(S) = base − Σ_{b∈S} C_b``. The kernel reads each
model's Q, T, W in place (by address), forms the three ``C_b`` once per model (small
BLAS products in the cheaper association order; C_RR from ``W − Q B Qᵀ − C_CR −
C_CC`` when that is cheaper) and then writes each subset as one contiguous stream;
models run in parallel (``prange``, one synchronisation per call).
The products go to BLAS through Numba (SciPy's OpenBLAS). At these sizes
(m·n·k < 2·65536·4) OpenBLAS runs each product on the calling thread, so the two
levels of threading do not compete; what does compete is another library's idle
worker threads still spinning after a call (see benchmarks/bench_ablation.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic
from numba.np.numpy_support import carray

from .schur import SCALE_LIMIT

# Only FMA contraction; no reassociation, so NaN/inf semantics and the order of the
# subtractions are kept.
_FASTMATH = {"contract"}


@intrinsic
def _f64_pointer(typingctx, addr):  # noqa: ARG001 (numba's intrinsic signature)
    """The address ``addr`` (an integer) as a float64 pointer, for ``carray``."""
    sig = types.CPointer(types.float64)(types.intp)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


# Called as _ptr(addr) in compiled code; numba's stubs would type the call by the
# Python signature above (typingctx first).
_ptr: Any = _f64_pointer


@njit(cache=True, nogil=True)
def _mass_scale(t):
    """A power of two g keeping the squared norms of g·T finite.

    Without it they overflow (mass nan) for ``|T|`` beyond ~1e154 or underflow
    below ~1e-154.
    """
    amax = 0.0
    for i in range(t.shape[0]):
        for j in range(t.shape[1]):
            amax = max(amax, abs(t[i, j]))
    if amax > SCALE_LIMIT or (amax > 0.0 and amax < 1.0 / SCALE_LIMIT):
        return math.ldexp(1.0, min(-math.frexp(amax)[1], 1023))
    return 1.0


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
def _q_b_qt(q, t, blk):
    """Q B Qᵀ, B the block-diagonal part of T (at most two entries per column)."""
    n = q.shape[0]
    qb = np.zeros((n, n))
    for j in range(n):
        for k in range(max(0, j - 1), min(n, j + 2)):
            if blk[k] == blk[j]:
                v = t[k, j]
                if v != 0.0:
                    for i in range(n):
                        qb[i, j] += q[i, k] * v
    return qb @ q.T


@njit(cache=True, nogil=True)
def _contributions(q, t, w, blk, n_R, with_b, g):
    """C[0..2] = Q N_b Qᵀ for b = RR, CR, CC; C[3] = Q B Qᵀ if with_b.

    Without ``with_b`` and with a large R (``n_R (n_R + n) > n²``), C_RR comes from
    linearity, ``W − Q B Qᵀ − C_CR − C_CC`` (2n³ flops instead of
    ``2n n_R² + 2n² n_R``); it then also carries the factorisation's backward error
    ``W − Q T Qᵀ``, of the order of the products' own rounding.
    """
    n = q.shape[0]
    n_C = n - n_R
    nrr, ncr, ncc, sq, tsq = _split_couplings(t, blk, n_R, g)
    C = np.empty((4 if with_b else 3, n, n))
    qr = np.ascontiguousarray(q[:, :n_R])
    qc = np.ascontiguousarray(q[:, n_R:])
    # A block with no mass (or an empty side) contributes exactly zero.
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
        C[3] = _q_b_qt(q, t, blk)
    if sq[0] <= 0.0:
        C[0] = 0.0
    elif not with_b and n_R * (n_R + n) > n * n:
        d = _q_b_qt(q, t, blk)
        c0 = C[0]
        c1 = C[1]
        c2 = C[2]
        for i in range(n):
            for j in range(n):
                c0[i, j] = w[i, j] - d[i, j] - c1[i, j] - c2[i, j]
    else:
        C[0] = (qr @ nrr) @ qr.T
    return C, sq, tsq


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def ablate_batch(addr, n, blk, n_R, sel, use_w, out, mass):
    """Fill ``out[m, s]`` and ``mass[m, s]`` for models m and subsets s.

    addr : (M, 3) intp, addresses of model m's Q, T, W: C-contiguous float64 (n, n)
    arrays that stay alive during the call (read in place, never copied).
    blk : (M, n) int64 block number per Schur position; n_R : (M,) int64.
    sel : (S, 3) float64 in {0, 1}: subset s removes block b iff sel[s, b] == 1.
    use_w : bool; True: out = W − Σ_{b∈S} C_b, False: out = Q B Qᵀ + Σ_{b∉S} C_b.
    out : (M, S, n, n) float64 or float32, C-contiguous (computed in float64, then
    rounded once); mass : (M, S) float64 (‖ΔT‖_F / ‖T‖_F).
    """
    M = addr.shape[0]
    S = sel.shape[0]
    nn = n * n
    for m in prange(M):
        q = carray(_ptr(addr[m, 0]), (n, n))
        t = carray(_ptr(addr[m, 1]), (n, n))
        w = carray(_ptr(addr[m, 2]), (n, n))
        g = _mass_scale(t)
        C, sq, tsq = _contributions(q, t, w, blk[m], n_R[m], not use_w, g)
        # One contiguous write stream per subset (vectorisable, each output
        # element written once); the three contributions (3·n² doubles) stay in
        # cache across the S passes.
        c0 = C[0].reshape(nn)
        c1 = C[1].reshape(nn)
        c2 = C[2].reshape(nn)
        o = out[m].reshape((S, nn))
        if use_w:
            x = w.reshape(nn)
            sg = 1.0
        else:
            x = C[3].reshape(nn)
            sg = -1.0
        for s in range(S):
            # use_w: w − Σ sel·C_b; else QBQᵀ + Σ (1 − sel)·C_b.
            a0 = sel[s, 0] if use_w else 1.0 - sel[s, 0]
            a1 = sel[s, 1] if use_w else 1.0 - sel[s, 1]
            a2 = sel[s, 2] if use_w else 1.0 - sel[s, 2]
            os_ = o[s]
            for k in range(nn):
                os_[k] = x[k] - sg * a0 * c0[k] - sg * a1 * c1[k] - sg * a2 * c2[k]
        for s in range(S):
            removed = sel[s, 0] * sq[0] + sel[s, 1] * sq[1] + sel[s, 2] * sq[2]
            mass[m, s] = np.sqrt(removed / tsq) if tsq > 0.0 else 0.0
