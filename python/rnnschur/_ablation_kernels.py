"""Numba kernels of the batched Schur-coupling ablation (private; see ablation.py).

Linearity: with ``C_b = Q N_b Qᵀ`` for the three coupling blocks ``b ∈ {RR, CR, CC}``,
every subset ``S`` gives ``W̃(S) = base − Σ_{b∈S} C_b``. Per model the kernel reads
Q, T, W in place (by address) and forms the three ``C_b`` with row-major "NN"
dgemm calls on sub-blocks of Q, T and a transposed copy of Q (SciPy's OpenBLAS
through ``_numba_blas``; no temporaries, cheaper association order, C_RR from
``W − Q B Qᵀ − C_CR − C_CC`` when that is cheaper). It then writes each subset as
one contiguous stream with non-temporal stores (``_numba_stream``): the output
(8 · n² per model) dominates the memory traffic, and streaming stores skip reading
it first. Models are split into one contiguous range per thread, one
synchronisation per call. At these sizes (m·n·k < 2·65536·4) OpenBLAS runs each
product on the calling thread, so the two levels of threading do not compete;
what does compete is another library's idle worker threads still spinning after a
call (see benchmarks/bench_ablation.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic
from numba.np.numpy_support import carray

from ._numba_blas import address, gemm_rm
from ._numba_stream import combine_stream
from .schur import SCALE_LIMIT

# Sums of squares may be reassociated (vectorised); their order is still fixed
# for a given length, so results are reproducible and exact under scaling by 2^k.
_SUMS = {"contract", "reassoc"}
# Unscaled squared norms inside this range neither overflowed nor lost anything
# that matters relative to the total.
_TSQ_LOW = 2.0**-800
_TSQ_HIGH = 2.0**800


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


@njit(cache=True, nogil=True, fastmath=_SUMS)
def _sum_squares(row, lo, hi, g):
    """Σ (g·row[j])² for j in [lo, hi) (vectorised: the order is fixed per length)."""
    acc = 0.0
    for j in range(lo, hi):
        v = row[j] * g
        acc += v * v
    return acc


@njit(cache=True, nogil=True)
def _squared_norms(t, blk, n_R, g, nrr, ncc, gather):
    """Squared norms of g·N_RR, g·T_CR, g·N_CC (array of 3) and of g·T.

    With ``gather``, also N_RR into ``nrr`` (n_R, n_R) and N_CC into ``ncc``
    (n_C, n_C), dense, zeros outside the couplings (the diagonal blocks and below)
    in the same pass over T; T_CR is multiplied in place. The sums run in the same
    order either way.
    """
    n = t.shape[0]
    sq = np.zeros(3)
    tsq = 0.0
    for i in range(n):
        row = t[i]
        j0 = _next_block(blk, i)
        tsq += _sum_squares(row, max(i - 1, 0), j0, g)
        if i < n_R:
            sq[0] += _sum_squares(row, j0, n_R, g)
            sq[1] += _sum_squares(row, max(j0, n_R), n, g)
            if gather:
                out = nrr[i]
                for j in range(min(j0, n_R)):
                    out[j] = 0.0
                for j in range(j0, n_R):
                    out[j] = row[j]
        else:
            sq[2] += _sum_squares(row, j0, n, g)
            if gather:
                out = ncc[i - n_R]
                for j in range(n_R, j0):
                    out[j - n_R] = 0.0
                for j in range(j0, n):
                    out[j - n_R] = row[j]
    return sq, tsq + sq[0] + sq[1] + sq[2]


@njit(cache=True, nogil=True)
def _next_block(blk, i):
    """First column right of row i's diagonal block (``blk`` numbers the blocks)."""
    j0 = i + 1
    while j0 < blk.shape[0] and blk[j0] == blk[i]:
        j0 += 1
    return j0


@njit(cache=True, nogil=True)
def _gather_and_masses(t, blk, n_R, nrr, ncc):
    """N_RR, N_CC gathered (see ``_squared_norms``) and the squared norms.

    Summed unscaled when that cannot over- or underflow, else (a second pass) of
    ``g·T`` with ``g`` a power of two from ``max|T|``: the ratios, hence the
    masses, are the same either way.
    """
    sq, tsq = _squared_norms(t, blk, n_R, 1.0, nrr, ncc, True)
    if not (_TSQ_LOW < tsq < _TSQ_HIGH):
        sq, tsq = _squared_norms(t, blk, n_R, _mass_scale(t), nrr, ncc, False)
    return sq, tsq


@njit(cache=True, nogil=True)
def _transpose(q, qt):
    """``qt[:] = q.T`` (square, C-contiguous): contiguous writes, strided reads."""
    n = q.shape[0]
    for j in range(n):
        for i in range(n):
            qt[j, i] = q[i, j]


@njit(cache=True, nogil=True)
def _q_b(q, t, blk, qb):
    """``qb = Q B``, B the block-diagonal part of T (at most two entries per column).

    Column j of Q B is ``q_j t_jj + q_{j−1} t_{j−1,j} + q_{j+1} t_{j+1,j}`` with the
    neighbours' coefficients zero outside j's block; swept row by row (contiguous).
    """
    n = q.shape[0]
    d0 = np.empty(n)
    dm = np.zeros(n)
    dp = np.zeros(n)
    for j in range(n):
        d0[j] = t[j, j]
        if j > 0 and blk[j - 1] == blk[j]:
            dm[j] = t[j - 1, j]
        if j + 1 < n and blk[j + 1] == blk[j]:
            dp[j] = t[j + 1, j]
    for i in range(n):
        qi = q[i]
        out = qb[i]
        for j in range(n):
            out[j] = qi[j] * d0[j]
        for j in range(1, n):
            out[j] += qi[j - 1] * dm[j]
        for j in range(n - 1):
            out[j] += qi[j + 1] * dp[j]


@njit(cache=True, nogil=True)
def _mm(bl, m, n, k, a, lda, b, ldb, c, ldc):
    """Row-major ``C = A B`` on addresses; every product here is "NN", the layout
    OpenBLAS runs fastest at these sizes (its "TN" path is ~1.5× slower)."""
    gemm_rm(bl, False, False, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc)


@njit(cache=True, nogil=True)
def _contributions(bl, q, t, w, blk, n_R, sq, ws, C, qbqt):
    """C[0..2] = Q N_b Qᵀ for b = RR, CR, CC; ``qbqt`` = Q B Qᵀ when it is given.

    Dense "NN" dgemms on Q and T in place and on Qᵀ (``ws.qt``). C_CR's big
    product has inner dimension ``min(n_R, n_C)``; for ``n_R >= n_C`` the products
    by ``Q_Cᵀ`` of C_CR and C_CC are one stacked dgemm. When Q B Qᵀ is not needed
    otherwise and a large R makes it cheaper (``n_R (n_R + n) > n²``), C_RR comes
    from linearity, ``W − Q B Qᵀ − C_CR − C_CC``; it then also carries the
    factorisation's backward error ``W − Q T Qᵀ``, of the order of the products'
    own rounding. A block with no mass (or an empty side) is exactly zero.
    """
    n = q.shape[0]
    n_C = n - n_R
    nrr, ncc, work, qt, qb = ws
    linear = n_R * (n_R + n) > n * n
    need_qb = qbqt.shape[0] or (sq[0] > 0.0 and linear)
    if need_qb:  # first, so that Q arrives in cache by rows, not by columns
        _q_b(q, t, blk, qb)
    _transpose(q, qt)
    pq, pt, pqt = address(q), address(t), address(qt)
    pqtc = pqt + 8 * n * n_R  # Q_Cᵀ: rows n_R.. of Qᵀ
    pw = address(work)
    if sq[1] > 0.0 and sq[2] > 0.0 and n_R >= n_C:
        # rows 0..n-1: Q_R T_CR; rows n..2n-1: Q_C N_CC; times Q_Cᵀ into C[1], C[2].
        _mm(bl, n, n_C, n_R, pq, n, pt + 8 * n_R, n, pw, n_C)
        _mm(bl, n, n_C, n_C, pq + 8 * n_R, n, address(ncc), n_C, pw + 8 * n * n_C, n_C)
        _mm(bl, 2 * n, n, n_C, pw, n_C, pqtc, n, address(C[1]), n)
    else:
        if sq[1] <= 0.0:
            C[1] = 0.0
        elif n_R >= n_C:
            _mm(bl, n, n_C, n_R, pq, n, pt + 8 * n_R, n, pw, n_C)
            _mm(bl, n, n, n_C, pw, n_C, pqtc, n, address(C[1]), n)
        else:  # T_CR Q_Cᵀ (n_R, n), then Q_R times it.
            _mm(bl, n_R, n, n_C, pt + 8 * n_R, n, pqtc, n, pw, n)
            _mm(bl, n, n, n_R, pq, n, pw, n, address(C[1]), n)
        if sq[2] > 0.0:
            _mm(bl, n, n_C, n_C, pq + 8 * n_R, n, address(ncc), n_C, pw, n_C)
            _mm(bl, n, n, n_C, pw, n_C, pqtc, n, address(C[2]), n)
        else:
            C[2] = 0.0
    if need_qb:
        dst = qbqt if qbqt.shape[0] else C[0]
        _mm(bl, n, n, n, address(qb), n, pqt, n, address(dst), n)
    if sq[0] <= 0.0:
        C[0] = 0.0
    elif linear and not qbqt.shape[0]:
        c0, c1, c2 = C[0], C[1], C[2]
        for i in range(n):
            for j in range(n):
                c0[i, j] = w[i, j] - c0[i, j] - c1[i, j] - c2[i, j]
    else:
        _mm(bl, n, n_R, n_R, pq, n, address(nrr), n_R, pw, n_R)
        _mm(bl, n, n, n_R, pw, n_R, pqt, n, address(C[0]), n)


@njit(cache=True, nogil=True)
def _write_subsets(x, sg, C, sel, use_w, o):
    """``o[s] = x − sg Σ_b a_sb C_b`` for every subset s, one contiguous stream each.

    The three contributions (3·n² doubles) and ``x`` stay in cache across the S
    passes; every output element is written once, by non-temporal stores.
    """
    nn = x.shape[0]
    c0 = C[0].reshape(nn)
    c1 = C[1].reshape(nn)
    c2 = C[2].reshape(nn)
    for s in range(sel.shape[0]):
        # use_w: w − Σ sel·C_b; else QBQᵀ + Σ (1 − sel)·C_b.
        a0 = sg * (sel[s, 0] if use_w else 1.0 - sel[s, 0])
        a1 = sg * (sel[s, 1] if use_w else 1.0 - sel[s, 1])
        a2 = sg * (sel[s, 2] if use_w else 1.0 - sel[s, 2])
        combine_stream(o[s], x, c0, c1, c2, a0, a1, a2)


@njit(cache=True, nogil=True)
def _ablate_model(bl, q, t, w, blk, n_R, sel, use_w, o, mass, ws, C, qbqt):
    """All subsets of one model into ``o`` (S, n·n) and ``mass`` (S,)."""
    n = q.shape[0]
    n_C = n - n_R
    nrr, ncc = ws[0], ws[1]
    sq, tsq = _gather_and_masses(
        t,
        blk,
        n_R,
        nrr[: n_R * n_R].reshape((n_R, n_R)),
        ncc[: n_C * n_C].reshape((n_C, n_C)),
    )
    _contributions(bl, q, t, w, blk, n_R, sq, ws, C, qbqt)
    if use_w:
        _write_subsets(w.reshape(n * n), 1.0, C, sel, True, o)
    else:
        _write_subsets(qbqt.reshape(n * n), -1.0, C, sel, False, o)
    for s in range(sel.shape[0]):
        removed = sel[s, 0] * sq[0] + sel[s, 1] * sq[1] + sel[s, 2] * sq[2]
        mass[s] = np.sqrt(removed / tsq) if tsq > 0.0 else 0.0


@njit(cache=True, parallel=True)
def ablate_batch(bl, threads, addr, n, blk, n_R, sel, use_w, out, mass):
    """Fill ``out[m, s]`` and ``mass[m, s]`` for models m and subsets s.

    bl : (1,) intp, BLAS addresses (``_numba_blas.blas_table``).
    threads : int, Numba's thread count (``numba.get_num_threads()``; passed in
    because calling it in compiled code prevents caching).
    addr : (M, 3) intp, addresses of model m's Q, T, W: C-contiguous float64 (n, n)
    arrays that stay alive during the call (read in place, never copied).
    blk : (M, n) int64 block number per Schur position; n_R : (M,) int64.
    sel : (S, 3) float64 in {0, 1}: subset s removes block b iff sel[s, b] == 1.
    use_w : bool; True: out = W − Σ_{b∈S} C_b, False: out = Q B Qᵀ + Σ_{b∉S} C_b.
    out : (M, S, n, n) float64 or float32, C-contiguous (computed in float64, then
    rounded once); mass : (M, S) float64 (‖ΔT‖_F / ‖T‖_F).

    Models are split into one contiguous range per thread (one synchronisation per
    call), each range with its own workspace.
    """
    M = addr.shape[0]
    S = sel.shape[0]
    chunks = max(1, min(M, threads))
    for c in prange(chunks):
        ws = (
            np.empty(n * n),
            np.empty(n * n),
            np.empty(2 * n * n),
            np.empty((n, n)),
            np.empty((n, n)),
        )
        C = np.empty((3, n, n))
        qbqt = np.empty((0 if use_w else n, n))
        for m in range(c * M // chunks, (c + 1) * M // chunks):
            q = carray(_ptr(addr[m, 0]), (n, n))
            t = carray(_ptr(addr[m, 1]), (n, n))
            w = carray(_ptr(addr[m, 2]), (n, n))
            _ablate_model(
                bl,
                q,
                t,
                w,
                blk[m],
                n_R[m],
                sel,
                use_w,
                out[m].reshape((S, n * n)),
                mass[m],
                ws,
                C,
                qbqt,
            )
