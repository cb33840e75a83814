"""Numba kernels of the Cayley map ``W = O(A) D O(A)ᵀ`` and its pullback (private; see
constructions.py).

Why not NumPy/SciPy: the trainer evaluates the map and its pullback once per Adam
step, between two calls of the compiled core. Through BLAS/LAPACK the LU solve and the
products can wake OpenBLAS's worker threads, which then compete with the core's thread
pool for the same cores (the README, "Training settings", has the measurement). These
kernels stay on the calling thread and run in a fixed order, so the result does not
depend on any BLAS thread setting either.

The structure is used where it saves O(n³) work: ``M = (I + A)⁻¹`` gives
``O = (I - A) M = 2M - I`` (because ``I - A = 2I - (I + A)``); products with the
block-diagonal ``D`` cost O(n²); ``∂L/∂D`` needs only the block-diagonal entries of
``Oᵀ G O``. One inversion, one product in the map and four in the pullback. The
``_free`` kernels serve a dense ``D`` (construction ``cayley_free``): two products in
the map, six in the pullback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

import numpy as np
from numba import njit

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _kernel(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Compile ``fn`` with Numba, keeping its signature for the type checker."""
    # Only FMA contraction: no reassociation, so the operation order is fixed.
    # error_model="numpy": a zero pivot gives inf/NaN (caught downstream as a
    # non-finite W_hh), never a ZeroDivisionError inside the kernel.
    compiled = njit(cache=True, nogil=True, fastmath={"contract"}, error_model="numpy")(
        fn
    )
    return cast("Callable[_P, _R]", compiled)


@_kernel
def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out = a @ b`` in i-k-j order (contiguous, vectorisable inner loop)."""
    n, k = a.shape
    m = b.shape[1]
    for i in range(n):
        row = out[i]
        for j in range(m):
            row[j] = 0.0
        for p in range(k):
            aip = a[i, p]
            bp = b[p]
            for j in range(m):
                row[j] += aip * bp[j]


@_kernel
def _inverse(a: np.ndarray) -> np.ndarray:
    """``a⁻¹`` by LU with partial pivoting (largest magnitude in the column, first
    one on ties, as LAPACK's getrf) and two triangular solves on the identity."""
    n = a.shape[0]
    lu = a.copy()
    perm = np.arange(n)
    for k in range(n):
        p = k
        big = abs(lu[k, k])
        for i in range(k + 1, n):
            v = abs(lu[i, k])
            if v > big:
                big = v
                p = i
        if p != k:
            for j in range(n):
                t = lu[k, j]
                lu[k, j] = lu[p, j]
                lu[p, j] = t
            t = perm[k]
            perm[k] = perm[p]
            perm[p] = t
        pivot = lu[k, k]
        for i in range(k + 1, n):
            lik = lu[i, k] / pivot
            lu[i, k] = lik
            for j in range(k + 1, n):
                lu[i, j] -= lik * lu[k, j]
    x = np.zeros((n, n))
    for i in range(n):
        x[i, perm[i]] = 1.0
    for i in range(n):  # L y = P, L unit lower triangular
        xi = x[i]
        for k in range(i):
            lik = lu[i, k]
            xk = x[k]
            for j in range(n):
                xi[j] -= lik * xk[j]
    for i in range(n - 1, -1, -1):  # U x = y
        xi = x[i]
        for k in range(i + 1, n):
            uik = lu[i, k]
            xk = x[k]
            for j in range(n):
                xi[j] -= uik * xk[j]
        pivot = lu[i, i]
        for j in range(n):
            xi[j] /= pivot
    return x


@_kernel
def _times_blockdiag(
    x: np.ndarray, e: np.ndarray, singles: np.ndarray, pairs: np.ndarray
) -> np.ndarray:
    """``x @ e`` for ``e`` block diagonal with 1×1 blocks at ``singles`` and 2×2
    blocks at ``pairs`` (every other entry of ``e`` is ignored)."""
    n = x.shape[0]
    out = np.zeros_like(x)
    for s in singles:
        d = e[s, s]
        for r in range(n):
            out[r, s] = x[r, s] * d
    for p in pairs:
        e00 = e[p, p]
        e01 = e[p, p + 1]
        e10 = e[p + 1, p]
        e11 = e[p + 1, p + 1]
        for r in range(n):
            x0 = x[r, p]
            x1 = x[r, p + 1]
            out[r, p] = x0 * e00 + x1 * e10
            out[r, p + 1] = x0 * e01 + x1 * e11
    return out


@_kernel
def _col_dot(a: np.ndarray, b: np.ndarray, i: int, j: int) -> float:
    """``a[:, i] · b[:, j]``."""
    s = 0.0
    for k in range(a.shape[0]):
        s += a[k, i] * b[k, j]
    return s


@_kernel
def _cayley_of(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(M, O)`` with ``M = (I + A)⁻¹`` and ``O = 2M - I``."""
    n = A.shape[0]
    ipa = A.copy()
    for i in range(n):
        ipa[i, i] += 1.0
    M = _inverse(ipa)
    O = 2.0 * M
    for i in range(n):
        O[i, i] -= 1.0
    return M, O


@_kernel
def cayley_forward(
    A: np.ndarray, D: np.ndarray, singles: np.ndarray, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(M, O, OD, W)`` with ``M = (I + A)⁻¹``, ``O = 2M - I``, ``OD = O D`` and
    ``W = OD Oᵀ``; all float64 ``(n, n)``. ``A``, ``D`` float64 C-contiguous."""
    n = A.shape[0]
    M, O = _cayley_of(A)
    OD = _times_blockdiag(O, D, singles, pairs)
    W = np.empty((n, n))
    _matmul(OD, np.ascontiguousarray(O.T), W)
    return M, O, OD, W


@_kernel
def cayley_forward_free(
    A: np.ndarray, D: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cayley_forward` for a dense ``D`` (every entry used)."""
    n = A.shape[0]
    M, O = _cayley_of(A)
    OD = np.empty((n, n))
    _matmul(O, D, OD)
    W = np.empty((n, n))
    _matmul(OD, np.ascontiguousarray(O.T), W)
    return M, O, OD, W


@_kernel
def _skew_pullback(G_O: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``dA = -2 (E - Eᵀ)`` with ``E = Mᵀ G_O Mᵀ``, from ``G_O = ∂L/∂O``."""
    n = G_O.shape[0]
    Mt = np.ascontiguousarray(M.T)
    tmp = np.empty((n, n))
    _matmul(Mt, G_O, tmp)
    E = np.empty((n, n))
    _matmul(tmp, Mt, E)
    dA = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            # -2 (E - Eᵀ): exactly skew (a - b == -(b - a) in IEEE arithmetic)
            dA[i, j] = -2.0 * (E[i, j] - E[j, i])
    return dA


@_kernel
def cayley_pullback(
    G: np.ndarray,
    M: np.ndarray,
    O: np.ndarray,
    OD: np.ndarray,
    D: np.ndarray,
    singles: np.ndarray,
    pairs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(dA, dD)`` from ``G = ∂L/∂W`` and the outputs of :func:`cayley_forward`.

    ``G_O = G O Dᵀ + Gᵀ O D`` is ``∂L/∂O``; ``dO = -2 M dA M`` gives the unconstrained
    ``∂L/∂A = -2 Mᵀ G_O Mᵀ =: E`` and, with ``A`` skew, ``dA = E - Eᵀ``. ``dD`` holds
    the free-parameter gradients of ``D`` (layout: constructions module docstring)
    from the block-diagonal entries of ``Oᵀ G O``.
    """
    n = G.shape[0]
    GO = np.empty((n, n))
    _matmul(G, O, GO)
    G_O = np.empty((n, n))
    _matmul(np.ascontiguousarray(G.T), OD, G_O)
    G_O += _times_blockdiag(GO, np.ascontiguousarray(D.T), singles, pairs)
    dA = _skew_pullback(G_O, M)
    dD = np.zeros((n, n))
    for s in singles:
        dD[s, s] = _col_dot(O, GO, s, s)
    for p in pairs:
        ga = _col_dot(O, GO, p, p) + _col_dot(O, GO, p + 1, p + 1)
        gb = _col_dot(O, GO, p + 1, p) - _col_dot(O, GO, p, p + 1)
        dD[p, p] = ga
        dD[p + 1, p + 1] = ga
        dD[p + 1, p] = gb
        dD[p, p + 1] = -gb
    return dA, dD


@_kernel
def cayley_pullback_free(
    G: np.ndarray, M: np.ndarray, O: np.ndarray, OD: np.ndarray, D: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cayley_pullback` for a dense ``D``: ``G_O = G O Dᵀ + Gᵀ O D`` and the
    full ``dD = Oᵀ G O``."""
    n = G.shape[0]
    GO = np.empty((n, n))
    _matmul(G, O, GO)
    G_O = np.empty((n, n))
    _matmul(np.ascontiguousarray(G.T), OD, G_O)
    GODt = np.empty((n, n))
    _matmul(GO, np.ascontiguousarray(D.T), GODt)
    G_O += GODt
    dA = _skew_pullback(G_O, M)
    dD = np.empty((n, n))
    _matmul(np.ascontiguousarray(O.T), GO, dD)
    return dA, dD
