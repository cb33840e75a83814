"""Evaluation metrics of the paper, for one model or a stack of K ablated variants.

Every function accepts predictions with any number of leading "variant" axes in front
of the time-major ``(T, B, Ny)`` layout, so the K ablation variants of one model (or
M models × K variants) are scored from one batched rollout without a Python loop.
Targets and masks are shared by all variants and broadcast against them.

Definitions (Dräger 2026, arXiv:2606.18457):

* replay accuracy ``Acc_rc`` (section 3): the fraction of (sequence, lag, dimension)
  entries selected by the mask where ``sgn(ŷ) == y``; targets are ±1, so an output of
  exactly zero counts as wrong;
* ``FVU`` (eq. 7): ``E‖ŷ − y‖² / E‖y − ȳ‖²`` over the selected entries, with ``ȳ`` the
  empirical mean target over the evaluation set (per output dimension);
* ``ΔFVU`` (eq. 8): ``FVU(W̃) − FVU(W)``;
* ``S_ΔT`` (eq. 9): ``ΔFVU / (‖ΔT‖_F / ‖T‖_F)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["delta_fvu", "fvu", "replay_accuracy", "s_delta_t"]


def _prepare(
    y_hat: ArrayLike, y: ArrayLike, mask: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_hat = np.asarray(y_hat)
    y = np.asarray(y)
    if y_hat.ndim < 3:
        msg = f"y_hat must have shape (..., T, B, Ny); got ndim={y_hat.ndim}"
        raise ValueError(msg)
    if y.shape != y_hat.shape[-3:]:
        msg = f"y must have shape {y_hat.shape[-3:]} (the last 3 axes of y_hat); got {y.shape}"
        raise ValueError(msg)
    for name, arr in (("y_hat", y_hat), ("y", y)):
        if not np.issubdtype(arr.dtype, np.floating):
            msg = f"{name} must be a real floating-point array; got dtype {arr.dtype}"
            raise TypeError(msg)
    if mask is None:
        mask = np.ones(y.shape, dtype=bool)
    else:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            msg = f"mask must be a boolean array; got dtype {mask.dtype}"
            raise TypeError(msg)
        try:
            mask = np.broadcast_to(mask, y.shape)
        except ValueError:
            msg = f"mask of shape {mask.shape} does not broadcast to {y.shape}"
            raise ValueError(msg) from None
    if not mask.any():
        msg = "mask selects no entries"
        raise ValueError(msg)
    if not np.isfinite(y[mask]).all():
        msg = "y must be finite where mask is true"
        raise ValueError(msg)
    return y_hat, y, mask


def replay_accuracy(
    y_hat: ArrayLike, y: ArrayLike, mask: ArrayLike | None = None
) -> Any:
    """Sign-agreement accuracy (the paper's ``Acc_rc``).

    Parameters
    ----------
    y_hat : ndarray, shape (..., T, B, Ny), float
        Model outputs; leading axes index variants (e.g. ablation subsets).
    y : ndarray, shape (T, B, Ny), float
        ±1 targets.
    mask : ndarray of bool, broadcastable to (T, B, Ny), optional
        Entries that count (for the copy task: the replay lags). Default: all.

    Returns
    -------
    float or ndarray of float64, shape (...)
        Fraction of selected entries with ``sgn(ŷ) == y``.
    """
    y_hat, y, mask = _prepare(y_hat, y, mask)
    if not np.isin(y[mask], (-1.0, 1.0)).all():
        msg = "y must hold ±1 targets where mask is true"
        raise ValueError(msg)
    hits = (np.sign(y_hat) == y) & mask
    return hits.sum(axis=(-3, -2, -1)) / mask.sum()


def fvu(y_hat: ArrayLike, y: ArrayLike, mask: ArrayLike | None = None) -> Any:
    """Fraction of variance unexplained (paper eq. 7).

    ``ȳ`` is the mean target over the selected entries of the evaluation set, one per
    output dimension; numerator and denominator sum over the same selected entries.

    Parameters
    ----------
    y_hat : ndarray, shape (..., T, B, Ny), float
    y : ndarray, shape (T, B, Ny), float
    mask : ndarray of bool, broadcastable to (T, B, Ny), optional

    Returns
    -------
    float or ndarray of float64, shape (...)

    Raises
    ------
    ValueError
        If the selected targets have zero variance (FVU undefined).
    """
    y_hat, y, mask = _prepare(y_hat, y, mask)
    y64 = y.astype(np.float64)
    count_per_dim = mask.sum(axis=(0, 1))
    safe = np.maximum(count_per_dim, 1)
    y_bar = np.where(mask, y64, 0.0).sum(axis=(0, 1)) / safe
    total = float(np.where(mask, (y64 - y_bar) ** 2, 0.0).sum())
    if not total > 0.0:
        msg = "targets have zero variance over the selected entries; FVU is undefined"
        raise ValueError(msg)
    err = np.where(mask, (y_hat.astype(np.float64) - y64) ** 2, 0.0)
    return err.sum(axis=(-3, -2, -1)) / total


def delta_fvu(fvu_ablated: ArrayLike, fvu_full: ArrayLike) -> Any:
    """ΔFVU (paper eq. 8): ``FVU(W̃) − FVU(W)``; broadcasts like NumPy."""
    return np.asarray(fvu_ablated, dtype=np.float64) - np.asarray(fvu_full, np.float64)


def s_delta_t(delta: ArrayLike, removed_mass: ArrayLike) -> Any:
    """Normalised sensitivity ``S_ΔT`` (paper eq. 9): ΔFVU per unit removed Schur mass.

    Parameters
    ----------
    delta : array_like of float
        ΔFVU values.
    removed_mass : array_like of float
        ``‖ΔT‖_F / ‖T‖_F`` of the same interventions (broadcast against ``delta``).

    Returns
    -------
    ndarray of float64
        ``delta / removed_mass``; NaN where nothing was removed (the ratio is undefined,
        and a zero-mass ablation leaves the model unchanged).
    """
    delta = np.asarray(delta, dtype=np.float64)
    mass = np.asarray(removed_mass, dtype=np.float64)
    if np.any(mass < 0) or np.any(np.isnan(mass)):
        msg = "removed_mass must be non-negative"
        raise ValueError(msg)
    try:
        np.broadcast_shapes(delta.shape, mass.shape)
    except ValueError:
        msg = (
            f"delta of shape {delta.shape} and removed_mass of shape {mass.shape} "
            "do not broadcast together"
        )
        raise ValueError(msg) from None
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mass > 0, delta / np.where(mass > 0, mass, 1.0), np.nan)
