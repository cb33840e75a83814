# Type stubs for the compiled module rnnschur._core (kept by hand).
from __future__ import annotations  # noqa: PYI044 - required by the isort config

from typing import Any

import numpy as np
import numpy.typing as npt

eigen_version: str

# NaN/inf inputs and overflowed results of every kernel (module.cpp).
class NonFiniteError(ValueError): ...

# --- RNN kernels (bind_rnn.cpp). Arrays must share one float dtype and be
# C-contiguous; the public wrappers in rnnschur.rnn coerce and document them.
def rollout(
    W_xh: npt.NDArray[np.floating],
    W_hh: npt.NDArray[np.floating],
    W_hy: npt.NDArray[np.floating],
    x: npt.NDArray[np.floating],
    b_h: npt.NDArray[np.floating] | None,
    b_y: npt.NDArray[np.floating] | None,
    h0: npt.NDArray[np.floating] | None,
    return_hidden: bool,
    n_threads: int,
    *,
    leak: float = 1.0,
) -> (
    npt.NDArray[np.floating] | tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]
): ...
def loss_and_grad(
    W_xh: npt.NDArray[np.floating],
    W_hh: npt.NDArray[np.floating],
    W_hy: npt.NDArray[np.floating],
    x: npt.NDArray[np.floating],
    y: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_] | None,
    b_h: npt.NDArray[np.floating] | None,
    b_y: npt.NDArray[np.floating] | None,
    n_threads: int,
    *,
    leak: float = 1.0,
) -> tuple[float, dict[str, npt.NDArray[np.floating]]]: ...
def simd_level() -> str: ...
def simd_levels() -> list[str]: ...
def set_simd_level(level: str) -> str: ...
def hardware_threads() -> int: ...
def _set_forward_layout(layout: str) -> str: ...

# ---------------------------------------------------------------------------
# Ordered real Schur form (csrc/bind_schur.cpp, csrc/schur*.cpp; owner: schur).
# T and Q arguments that are modified in place must be Fortran-ordered float64.
# atol < 0 selects the default n * eps * ||T||_F; strategy (tests only): 0 automatic,
# 1 Sylvester-based methods only, 2 SVD bases only.
# ---------------------------------------------------------------------------
class SwapRejected(ValueError): ...

def schur_real_eigen(
    W: npt.ArrayLike,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def schur_real_own(
    W: npt.ArrayLike, threads: int = 1
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def schur_ordered_own(
    W: npt.ArrayLike, rtol: float, atol: float, threads: int = 1
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], dict[str, Any]]: ...
def schur_ordered_eigen(
    W: npt.ArrayLike, rtol: float, atol: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], dict[str, Any]]: ...
def schur_reorder(
    T: npt.NDArray[np.float64],
    Q: npt.NDArray[np.float64],
    rtol: float,
    atol: float,
    strategy: int = 0,
) -> dict[str, Any]: ...
def schur_standardize(
    T: npt.NDArray[np.float64], Q: npt.NDArray[np.float64]
) -> None: ...
def schur_standardize_2x2(
    a: float, b: float, c: float, d: float
) -> tuple[float, float, float, float, float, float]: ...
def schur_swap(
    T: npt.NDArray[np.float64],
    Q: npt.NDArray[np.float64],
    j: int,
    n1: int,
    n2: int,
    strategy: int = 0,
) -> dict[str, Any]: ...
def schur_blocks(
    T: npt.ArrayLike,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.complex128]
]: ...
def schur_sep(
    T: npt.ArrayLike, r: int, iters: int = 30, tol: float = 1e-3
) -> float: ...

# --- end of the Schur block --------------------------------------------------

def _tanh(x: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]: ...

# ---------------------------------------------------------------------------
# Fixed points (csrc/bind_dynamics.cpp, csrc/fixed_points.cpp). W, c, starts/h:
# C-contiguous float64. activation: 0 tanh, 1 identity (tests). status codes:
# 0 fixed, 1 slow, 2 not converged, 3 non-finite.
# ---------------------------------------------------------------------------
def fixed_points_newton(
    W: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    starts: npt.NDArray[np.float64],
    tol: float,
    grad_tol: float,
    max_iter: int,
    activation: int,
    history: bool,
    n_threads: int,
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.int8],
    npt.NDArray[np.int32],
    npt.NDArray[np.int8],
    npt.NDArray[np.float64] | None,
]: ...
def fixed_point_eigenvalues(
    W: npt.NDArray[np.float64],
    c: npt.NDArray[np.float64],
    h: npt.NDArray[np.float64],
    leak: float,
    activation: int,
    n_threads: int,
) -> npt.NDArray[np.complex128]: ...
