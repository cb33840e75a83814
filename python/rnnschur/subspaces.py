"""Subspace primitives: orthonormal bases, principal angles, alignment index.

Pure NumPy linear algebra on subspaces of the hidden-state space, used by
:mod:`rnnschur.alignment`. Hidden states are rows: ``H`` of shape (N, Nh), or
(T, B, Nh) flattened to (N, Nh). Covariances centre ``H``.

References
----------
G. F. Elsayed, A. H. Lara, M. T. Kaufman, M. M. Churchland and J. P. Cunningham
(2016), "Reorganization between preparatory and movement population responses in
motor cortex", Nature Communications 7, 13239 (alignment index, and random
subspaces ``orth(U S^{1/2} G)`` biased to the data covariance ``U S Uᵀ``; their
code: github.com/gamaleldin/rand_subspaces, ``sample_rand_subspaces.m``).
A. V. Knyazev and M. E. Argentati (2002), "Principal angles between subspaces in an
A-based scalar product", SIAM J. Sci. Comput. 23(6), 2008-2040 (sine/cosine
principal angles).
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_int, check_real

__all__ = [
    "alignment_index",
    "as_float_matrix",
    "as_states",
    "covariance_spectrum",
    "orthonormal_basis",
    "participation_ratio",
    "principal_angles",
    "random_alignment_null",
    "rank_tolerance",
]

_EPS = float(np.finfo(np.float64).eps)

# ----------------------------------------------------------------- validation


def _float_array(a: object, name: str) -> np.ndarray:
    """float64 copy of a finite real float32/float64 array."""
    arr = np.asarray(a) if not isinstance(a, np.ndarray) else a
    if arr.dtype not in (np.float32, np.float64):
        msg = f"{name} must be a float32 or float64 array; got dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.size == 0:
        msg = f"{name} must not be empty; got shape {arr.shape}"
        raise ValueError(msg)
    out = np.array(arr, dtype=np.float64, copy=True)
    if not np.isfinite(out).all():
        msg = f"{name} must be finite; it contains NaN or inf"
        raise ValueError(msg)
    return out


def as_float_matrix(a: object, name: str) -> np.ndarray:
    """float64 copy of a finite, non-empty, 2-D float32/float64 array ``name``."""
    out = _float_array(a, name)
    if out.ndim != 2:
        msg = f"{name} must be 2-D; got shape {out.shape}"
        raise ValueError(msg)
    return out


def as_states(H: object, n_hidden: int | None = None) -> np.ndarray:
    """Hidden states as rows, (N, Nh) float64, from (N, Nh) or (T, B, Nh).

    Raises ``TypeError`` for non-float input, ``ValueError`` for NaN/inf, a wrong
    shape or width, or fewer than 2 states.
    """
    X = _float_array(H, "H")
    if X.ndim not in (2, 3):
        msg = f"H must have shape (N, Nh) or (T, B, Nh); got shape {X.shape}"
        raise ValueError(msg)
    X = X.reshape(-1, X.shape[-1])
    if n_hidden is not None and X.shape[1] != n_hidden:
        msg = f"H has {X.shape[1]} hidden units but W_hh is {n_hidden}x{n_hidden}"
        raise ValueError(msg)
    if X.shape[0] < 2:
        msg = f"H needs at least 2 states for a covariance; got {X.shape[0]}"
        raise ValueError(msg)
    return X


def rank_tolerance(rtol: float | None, shape: tuple[int, ...]) -> float:
    """Checked relative rank tolerance; ``None`` gives ``max(shape) · ε``."""
    if rtol is None:
        return max(shape) * _EPS
    return check_real("rtol", rtol, low=0.0, high=1.0, high_open=True)


# ----------------------------------------------------------------- subspaces


def orthonormal_basis(A: object, *, rtol: float | None = None) -> np.ndarray:
    """Orthonormal basis of the column space of ``A``, by SVD.

    Parameters
    ----------
    A : array_like, float32/float64, shape (n, m)
    rtol : float, optional
        Singular values ``σ_i > rtol · σ_max`` count; default ``max(n, m) · ε``
        (as in ``scipy.linalg.orth``).

    Returns
    -------
    ndarray, float64, shape (n, r)
        ``r`` is the numerical rank (0 for a zero matrix).
    """
    M = as_float_matrix(A, "A")
    U, s, _ = np.linalg.svd(M, full_matrices=False)
    tol = rank_tolerance(rtol, M.shape) * (s[0] if s.size else 0.0)
    r = int(np.count_nonzero(s > tol))
    return np.ascontiguousarray(U[:, :r])


def principal_angles(A: object, B: object, *, rtol: float | None = None) -> np.ndarray:
    """Principal angles between the column spaces of ``A`` and ``B``.

    Cosines come from the singular values of ``Q_Aᵀ Q_B``, sines from those of
    ``Q_B − Q_A Q_Aᵀ Q_B`` (Knyazev & Argentati 2002); each angle is taken from the
    sine when it is at most π/4 and from the cosine otherwise, so small and large
    angles are both accurate to about ``ε``.

    Parameters
    ----------
    A : array_like, shape (n, p)
    B : array_like, shape (n, q)
        float32/float64, finite, same number of rows.
    rtol : float, optional
        Rank tolerance of the orthonormalisation (see :func:`orthonormal_basis`).

    Returns
    -------
    ndarray, float64, shape (min(rank A, rank B),)
        Angles in radians in [0, π/2], in decreasing order (as
        ``scipy.linalg.subspace_angles``).
    """
    QA = orthonormal_basis(A, rtol=rtol)
    QB = orthonormal_basis(B, rtol=rtol)
    if QA.shape[0] != QB.shape[0]:
        msg = f"A and B must have the same number of rows; got {QA.shape[0]} and {QB.shape[0]}"
        raise ValueError(msg)
    if QA.shape[1] < QB.shape[1]:
        QA, QB = QB, QA
    if QB.shape[1] == 0:
        return np.empty(0)
    M = QA.T @ QB
    cos = np.linalg.svd(M, compute_uv=False)  # decreasing: angles increasing
    sin = np.linalg.svd(QB - QA @ M, compute_uv=False)[::-1]  # increasing
    small = cos**2 >= 0.5
    theta = np.where(
        small,
        np.arcsin(np.clip(sin, 0.0, 1.0)),
        np.arccos(np.clip(cos, 0.0, 1.0)),
    )
    return np.ascontiguousarray(theta[::-1])


def participation_ratio(H: object) -> float:
    """Participation ratio ``(Σλ)² / Σλ²`` of the covariance of hidden states.

    Parameters
    ----------
    H : array_like, float32/float64, shape (N, Nh) or (T, B, Nh)

    Returns
    -------
    float
        In [1, Nh]: ``Nh`` for isotropic activity, 1 for activity on a line.
    """
    lam = covariance_spectrum(as_states(H))[0]
    return float(lam.sum() ** 2 / np.sum(lam**2))


def covariance_spectrum(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues (decreasing, clipped at 0), eigenvectors (columns) and the
    covariance of the rows of ``X`` (N, Nh), centred, normalised by ``N − 1``.

    Raises ``ValueError`` when every row is the same.
    """
    Xc = X - X.mean(axis=0)
    C = (Xc.T @ Xc) / (X.shape[0] - 1)
    lam, U = np.linalg.eigh(C)
    lam, U = np.clip(lam[::-1], 0.0, None), U[:, ::-1]
    if lam[0] <= 0.0:
        msg = "H has zero variance: every hidden state is the same"
        raise ValueError(msg)
    return lam, U, C


def alignment_index(D: object, C: object) -> float:
    """Alignment index of Elsayed et al. (2016): ``tr(Dᵀ C D) / Σ_{i≤k} λ_i(C)``.

    Parameters
    ----------
    D : array_like, shape (n, k)
        Spans the subspace (orthonormalised here; k is its numerical rank).
    C : array_like, shape (n, n)
        Symmetric positive semidefinite covariance, not zero.

    Returns
    -------
    float
        In [0, 1] (Ky Fan): the fraction of the variance the best k-dimensional
        subspace captures that the subspace of ``D`` captures. NaN if ``D`` is zero.
    """
    Q = orthonormal_basis(D)
    Cm = as_float_matrix(C, "C")
    if Cm.shape != (Q.shape[0], Q.shape[0]):
        msg = f"C must be ({Q.shape[0]}, {Q.shape[0]}) to match D; got {Cm.shape}"
        raise ValueError(msg)
    lam = np.clip(np.linalg.eigvalsh((Cm + Cm.T) / 2.0)[::-1], 0.0, None)
    k = Q.shape[1]
    if k == 0:
        return math.nan
    if lam[:k].sum() <= 0.0:
        msg = "C must not be zero"
        raise ValueError(msg)
    return float(np.clip(np.sum((Cm @ Q) * Q) / lam[:k].sum(), 0.0, 1.0))


def random_alignment_null(
    C: object, dim: int, n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Alignment indices of random subspaces biased to the covariance ``C``.

    Each sample is ``orth(U S^{1/2} G)`` with ``C = U S Uᵀ`` and ``G`` an
    ``(n, dim)`` standard normal matrix (Elsayed et al. 2016, Methods; their
    ``sample_rand_subspaces``), so random directions fall where the activity
    varies, and its index is :func:`alignment_index` against ``C``.

    Parameters
    ----------
    C : array_like, float64, shape (n, n)
        Symmetric positive semidefinite, not zero.
    dim : int
        Subspace dimension, 1 <= dim <= n.
    n_samples : int
        Number of random subspaces (>= 1).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, float64, shape (n_samples,)
    """
    Cm = as_float_matrix(C, "C")
    n = Cm.shape[0]
    if Cm.shape != (n, n):
        msg = f"C must be square; got shape {Cm.shape}"
        raise ValueError(msg)
    if not isinstance(rng, np.random.Generator):
        msg = f"rng must be a numpy.random.Generator; got {type(rng).__name__}"
        raise TypeError(msg)
    dim = check_int("dim", dim, 1, n)
    n_samples = check_int("n_samples", n_samples, 1)
    lam, U = np.linalg.eigh((Cm + Cm.T) / 2.0)
    lam, U = np.clip(lam[::-1], 0.0, None), U[:, ::-1]
    top = lam[:dim].sum()
    if top <= 0.0:
        msg = "C must not be zero"
        raise ValueError(msg)
    G = rng.standard_normal((n_samples, n, dim))
    # A reduced QR spans the same space as orth() whenever U S^½ G has full column
    # rank; when rank(C) < dim its span contains range(C) and the index is 1 either way.
    Q = np.linalg.qr((U * np.sqrt(lam)) @ G, mode="reduced")[0]
    vals: np.ndarray = np.clip(np.einsum("sij,sij->s", Cm @ Q, Q) / top, 0.0, 1.0)
    return vals
