"""Where the unordered real Schur form comes from, and the core's reordering of it
(private; see schur.py for the algorithm).

Three sources: the compiled core's own QR (``"own"``), LAPACK ``dgees`` through SciPy
(``"lapack"``) and Eigen's ``RealSchur`` (``"eigen"``). ``"auto"`` picks by matrix
size and the number of BLAS threads; the reordering is always the compiled core's.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from scipy.linalg import lapack as _lapack

from . import _core

__all__ = ["METHODS", "blas_threads", "ordered_factor", "resolve_method"]

#: Accepted values of ``ordered_schur(method=...)``.
METHODS = ("auto", "own", "lapack", "eigen")

# Largest n for which method="auto" takes the own QR over LAPACK dgees, with one
# BLAS thread or more (then both run on two cores: dgees through OpenBLAS, the own
# QR with a second thread for Q). The figures behind it are in benchmarks/README.md.
_OWN_MAX_N = 1024
# Workspace size of dgees per n, from one workspace query each.
_LWORK: dict[int, int] = {}


def resolve_method(method: str, n: int) -> str:
    """Validate ``method`` and resolve ``"auto"`` by size."""
    if method not in METHODS:
        msg = f"method must be one of {METHODS}; got {method!r}"
        raise ValueError(msg)
    if method == "auto":
        return "own" if n <= _OWN_MAX_N else "lapack"
    return method


def ordered_factor(
    Ws: np.ndarray, rtol: float, atol: float, method: str
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], str]:
    """``(T, Q, stats, method used)``: the ordered Schur form of ``Ws``.

    ``Ws`` is float64 ``(n, n)``, already validated and scaled; ``method`` is
    resolved (not ``"auto"``); ``atol < 0`` asks the core for its default. If the
    own QR iteration does not converge, LAPACK is used instead. The own QR takes a
    second thread (forming Q and applying its updates, for n >= 128; the result is
    the same bit for bit) when BLAS may use more than one (:func:`blas_threads`).
    """
    if method == "own":
        try:
            threads = 2 if blas_threads() > 1 else 1
            T, Q, stats = _core.schur_ordered_own(Ws, rtol, atol, threads=threads)
        except RuntimeError:  # QR iteration did not converge: LAPACK instead
            method = "lapack"
        else:
            return T, Q, stats, method
    if method == "eigen":
        try:
            T, Q, stats = _core.schur_ordered_eigen(Ws, rtol, atol)
        except RuntimeError as exc:
            raise np.linalg.LinAlgError(str(exc)) from exc
        return T, Q, stats, method
    T, Q = _dgees(Ws)
    stats = _core.schur_reorder(T, Q, rtol, atol)
    return T, Q, stats, method


def blas_threads() -> int:
    """Threads OpenBLAS starts with: its environment variables, else the usable cores.

    Read on every call (a microsecond) so that the choice follows the environment;
    a limit set later at run time (threadpoolctl) is not seen.
    """
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _dgees(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unordered real Schur form ``(T, Q)`` by LAPACK ``dgees`` (Fortran order)."""
    n = W.shape[0]
    lwork = _LWORK.get(n)
    if lwork is None:
        res = _lapack.dgees(lambda _wr, _wi: None, W, lwork=-1)
        lwork = max(int(res[-2][0]), 3 * n, 1)
        _LWORK[n] = lwork
    A = np.array(W, order="F", copy=True)
    t, _, _, _, vs, _, info = _lapack.dgees(
        lambda _wr, _wi: None, A, lwork=lwork, overwrite_a=1
    )
    if info != 0:
        msg = f"LAPACK dgees failed to converge (info={info}) on W"
        raise np.linalg.LinAlgError(msg)
    return np.asfortranarray(t), np.asfortranarray(vs)
