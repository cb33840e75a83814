"""A trained network (:class:`TrainedModel`) and the error that carries the last good
one when training diverges (:class:`TrainingDiverged`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..network import Network
from ..tasks import Task
from .config import TrainConfig

__all__ = ["TrainedModel", "TrainingDiverged"]


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A trained network and how it was made.

    Attributes
    ----------
    W_xh : ndarray (Nh, Nx)
    W_hh : ndarray (Nh, Nh)
    W_hy : ndarray (Ny, Nh)
        In ``config.dtype`` (float32 by default): exactly the arrays used in training.
        Cast ``W_hh`` to float64 for Schur work.
    task : Task
    construction : str
    hidden : int
    config : TrainConfig
    seed : int
    history : dict of str to list of float
        Per epoch: ``"train_loss"`` (mean over the epoch's batches), ``"grad_norm"``
        (mean pre-clipping gradient norm), ``"lr"`` (at the epoch's last step),
        ``"eval_loss"``, ``"eval_fvu"`` and, for the copy task, ``"eval_accuracy"`` on
        the held-out set, and ``"seconds"`` (cumulative wall time).
    version : str
        rnnschur version that trained the model.
    cayley : dict or None
        For ``construction == "cayley"``: ``"A"``, ``"D"`` (``config.dtype``, the trained
        parameters) and ``"D_blocks"`` (int64 block sizes); ``W_hh`` equals
        ``W_from_cayley(A, D)`` (evaluated in float64) rounded to ``config.dtype``, so
        the unrounded float64 matrix is ``W_from_cayley(A.astype(float), D.astype(float),
        block_sizes=D_blocks)``. For ``"cayley_free"``: ``"A"`` and the dense ``"D"``
        only, and ``W_from_cayley(..., free_D=True)``. None for the dense constructions.
    """

    W_xh: np.ndarray
    W_hh: np.ndarray
    W_hy: np.ndarray
    task: Task
    construction: str
    hidden: int
    config: TrainConfig
    seed: int
    history: dict[str, list[float]] = field(default_factory=dict)
    version: str = ""
    cayley: dict[str, np.ndarray] | None = None

    @property
    def train_seconds(self) -> float:
        """Wall time of training (0 if no epoch finished)."""
        s = self.history.get("seconds", [])
        return float(s[-1]) if s else 0.0

    @cached_property
    def network(self) -> Network:
        """The trained network as a :class:`rnnschur.Network` (read-only copies of
        ``W_xh``, ``W_hh``, ``W_hy`` in ``config.dtype``; zero biases, ``h_0 = 0``,
        leak 1): the model every rollout of this object runs."""
        return Network(W_xh=self.W_xh, W_hh=self.W_hh, W_hy=self.W_hy)

    def rollout(
        self,
        x: np.ndarray,
        *,
        W_hh: np.ndarray | None = None,
        n_threads: int | None = None,
    ) -> np.ndarray:
        """Outputs ``ŷ`` for inputs ``x`` ``(T, B, Nx)``; ``W_hh`` may override (e.g. an
        ablated ``(K, Nh, Nh)`` stack). Runs :meth:`rnnschur.Network.rollout` of
        :attr:`network`; a float64 ``W_hh`` (or ``x``) makes the whole rollout float64,
        as in :func:`rnnschur.rollout`.

        Returns
        -------
        ndarray, shape (T, B, Ny) or (K, T, B, Ny)
        """
        net = self.network
        if (
            W_hh is not None
            and np.asarray(W_hh).dtype == np.float64
            and net.dtype != np.float64
        ):
            # Network.rollout casts W_hh to the network's dtype; the promotion to
            # float64 is exact, so this is the computation the core would do.
            net = Network(
                W_xh=self.W_xh.astype(np.float64),
                W_hh=self.W_hh.astype(np.float64),
                W_hy=self.W_hy.astype(np.float64),
            )
        y = net.rollout(x, W_hh=W_hh, batch_first=False, n_threads=n_threads)
        assert isinstance(y, np.ndarray)
        return y


class TrainingDiverged(RuntimeError):
    """Training hit a non-finite loss or gradient.

    Attributes
    ----------
    epoch, batch : int
        0-based position of the failing step.
    model : TrainedModel
        The last parameters whose loss and gradient were finite (the parameters before
        the last applied update; the initial ones if the first step failed), with the
        history of the completed epochs.
    """

    def __init__(self, message: str, epoch: int, batch: int, model: TrainedModel):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch
        self.model = model
