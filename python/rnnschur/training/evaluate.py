"""Held-out evaluation: the fixed held-out batch, and the scores of a rollout on it.

:func:`score` is the one place where held-out outputs become numbers (masked MSE, FVU,
replay accuracy); training, :func:`evaluate` and the ablation profiles all call it, and
it computes FVU and accuracy with :mod:`rnnschur.metrics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import metrics
from ..tasks import CopyTask, Task
from .model import TrainedModel

__all__ = ["evaluate", "heldout_batch", "score"]


def heldout_batch(
    task: Task, size: int, seed: int, dtype: DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed held-out set ``task.sample(size, default_rng(seed), split="test")``.

    Returns
    -------
    x : ndarray (T, size, Nx)
    y : ndarray (T, size, Ny)
        In ``dtype``.
    mask : ndarray of bool, broadcastable to (T, size, Ny)
    """
    return task.sample(size, np.random.default_rng(seed), split="test", dtype=dtype)


def score(
    task: Task, y_hat: np.ndarray, y: np.ndarray, mask: np.ndarray
) -> dict[str, Any]:
    """Masked MSE, FVU and (copy task) replay accuracy of outputs ``y_hat``.

    Parameters
    ----------
    task : Task
    y_hat : ndarray (..., T, B, Ny)
        Outputs; leading axes index variants (e.g. a stack of ablated networks).
    y : ndarray (T, B, Ny)
    mask : ndarray of bool, broadcastable to (T, B, Ny)

    Returns
    -------
    dict
        ``"loss"``, ``"fvu"`` and, for :class:`CopyTask`, ``"accuracy"``: a float each
        without leading axes, else float64 arrays over them.
    """
    m = np.broadcast_to(mask, y.shape)
    d = y_hat.astype(np.float64) - y
    loss = np.where(m, d * d, 0.0).sum(axis=(-3, -2, -1)) / m.sum()
    out = {"loss": loss, "fvu": metrics.fvu(y_hat, y, mask)}
    if isinstance(task, CopyTask):
        out["accuracy"] = metrics.replay_accuracy(y_hat, y, mask)
    return {k: float(v) if np.ndim(v) == 0 else np.asarray(v) for k, v in out.items()}


def evaluate(
    model: TrainedModel,
    *,
    W_hh: np.ndarray | None = None,
    size: int | None = None,
    seed: int | None = None,
    n_threads: int | None = None,
) -> dict[str, Any]:
    """Held-out scores of a model (or of the model with another ``W_hh``).

    Parameters
    ----------
    model : TrainedModel
    W_hh : ndarray (Nh, Nh) or (K, Nh, Nh), optional
        Replaces ``model.W_hh`` (e.g. an ablated matrix, or a stack of K variants: then
        every score is an array of K values). float32 or float64; a float64 ``W_hh``
        makes the whole rollout float64.
    size, seed : int, optional
        Held-out set; default ``model.config.eval_size`` / ``eval_seed`` (the set
        monitored during training).
    n_threads : int, optional

    Returns
    -------
    dict
        ``"loss"`` (masked MSE), ``"fvu"`` (paper eq. 7 over the masked entries) and, for
        the copy task, ``"accuracy"`` (mean replay accuracy: sign agreement over the
        replay lags × dims × sequences); see :func:`score`.
    """
    if not isinstance(model, TrainedModel):
        msg = f"model must be a TrainedModel; got {type(model).__name__}"
        raise TypeError(msg)
    cfg = model.config
    size = cfg.eval_size if size is None else size
    seed = cfg.eval_seed if seed is None else seed
    x, y, mask = heldout_batch(model.task, size, seed, dtype=model.W_xh.dtype)
    y_hat = model.rollout(x, W_hh=W_hh, n_threads=n_threads)
    return score(model.task, y_hat, y, mask)
