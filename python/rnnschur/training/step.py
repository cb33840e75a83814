"""The pieces of one training step: parameters in a flat buffer, the core's loss and
gradient, PyTorch's Adam, and the stream of training batches.

Precision: parameters, gradients and Adam moments live in the config's dtype, in one
flat buffer, so that Adam and gradient clipping are a handful of in-place vector
operations per step. For the Cayley constructions (``cayley``, ``cayley_free``) the
trained parameters are ``W_xh``, ``A``, ``D`` and ``W_hy``; the Cayley map and its
pullback are evaluated in float64 and ``W_hh`` is rounded to the working dtype before
each rollout. ``cayley`` keeps ``D`` in its initial block form (the pullback fills only
the block entries); ``cayley_free`` trains every entry of ``D``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..constructions import CAYLEY_CONSTRUCTIONS, CayleyMap
from ..rnn import loss_and_grad_unchecked, rollout
from ..tasks import Task

__all__ = ["Adam", "BatchStream", "FlatNetwork", "MaskCache", "core_loss_and_grad"]


def core_loss_and_grad(
    W_xh: np.ndarray,
    W_hh: np.ndarray,
    W_hy: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray | None,
    n_threads: int | None,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Loss and gradients through the core's lean entry point.

    All arrays share one dtype and are C-contiguous; ``mask`` is ``None`` or a bool
    array of exactly ``(T, B, Ny)``.
    """
    loss, g = loss_and_grad_unchecked(
        W_xh, W_hh, W_hy, x, y, mask, n_threads=0 if n_threads is None else n_threads
    )
    return loss, g["W_xh"], g["W_hh"], g["W_hy"]


class MaskCache:
    """Full ``(T, B, Ny)`` masks for the lean core entry (``None`` when all true)."""

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.full: np.ndarray | None = None

    def __call__(
        self, mask: np.ndarray, shape: tuple[int, int, int]
    ) -> np.ndarray | None:
        key = (mask.shape, shape, mask.tobytes())
        if key != self.key:
            self.key = key
            full = np.broadcast_to(mask, shape)
            self.full = None if full.all() else np.ascontiguousarray(full)
        return self.full


class BatchStream:
    """Training batches drawn ``chunk`` at a time (one vectorised ``task.sample`` call
    per chunk), each returned as contiguous ``(x, y, mask)`` views.

    The stream depends only on the task, the batch size, the chunk size and the
    generator, so runs of different lengths see the same leading batches.
    """

    def __init__(
        self,
        task: Task,
        batch_size: int,
        rng: np.random.Generator,
        dtype: np.dtype[Any],
        chunk: int = 16,
    ) -> None:
        self.task, self.batch_size, self.rng, self.dtype = task, batch_size, rng, dtype
        self.chunk = chunk
        self.i = chunk
        self.xs: np.ndarray = np.empty(0)
        self.ys: np.ndarray = np.empty(0)
        self.masks: list[np.ndarray] = []

    @staticmethod
    def _split(a: np.ndarray, k: int, b: int) -> np.ndarray:
        # (T, k*b, N) -> contiguous (k, T, b, N)
        t, _, n = a.shape
        return np.ascontiguousarray(a.reshape(t, k, b, n).transpose(1, 0, 2, 3))

    def next(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.i == self.chunk:
            k, b = self.chunk, self.batch_size
            x, y, mask = self.task.sample(k * b, self.rng, dtype=self.dtype)
            self.xs, self.ys = self._split(x, k, b), self._split(y, k, b)
            if mask.shape[1] == 1:
                self.masks = [mask] * k
            else:
                full = np.broadcast_to(mask, y.shape)
                self.masks = list(self._split(full, k, b))
            self.i = 0
        i = self.i
        self.i += 1
        return self.xs[i], self.ys[i], self.masks[i]


class FlatNetwork:
    """Trainable parameters as views into one flat buffer, and one loss/grad step.

    ``theta`` and ``grad`` share a layout: ``W_xh, W_hh, W_hy`` for dense
    constructions, ``W_xh, A, D, W_hy`` for the Cayley ones (then ``W_hh`` is a
    separate buffer refreshed from ``A, D``).
    """

    def __init__(
        self, init: dict[str, np.ndarray], construction: str, dtype: np.dtype[Any]
    ) -> None:
        self.cayley = construction in CAYLEY_CONSTRUCTIONS
        #: ``cayley_free``: D is dense (every entry trained), no block sizes.
        self.free_D = construction == "cayley_free"
        names = ["W_xh", "A", "D", "W_hy"] if self.cayley else ["W_xh", "W_hh", "W_hy"]
        self.names = names
        self.shapes = [init[n].shape for n in names]
        sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.dtype = np.dtype(dtype)
        self.theta = np.empty(self.offsets[-1], dtype=dtype)
        self.grad = np.zeros_like(self.theta)
        self.p = self.views(self.theta)
        self.g = self.views(self.grad)
        for n in names:
            self.p[n][...] = init[n]
        # Block sizes of D for ``cayley``; None for a dense D (and unused when dense W)
        self.blocks: np.ndarray | None = None
        if self.cayley:
            if not self.free_D:
                self.blocks = np.asarray(init["D_blocks"], dtype=np.int64)
            nh = init["A"].shape[0]
            self.W_hh = np.empty((nh, nh), dtype=dtype)
        else:
            self.W_hh = self.p["W_hh"]
        self.cmap: CayleyMap | None = None
        self._mask = MaskCache()

    def views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {
            n: flat[self.offsets[i] : self.offsets[i + 1]].reshape(self.shapes[i])
            for i, n in enumerate(self.names)
        }

    def refresh(self) -> None:
        """Recompute ``W_hh`` from ``A, D`` (Cayley only), in float64."""
        if self.cayley:
            p = self.p
            self.cmap = CayleyMap(
                p["A"].astype(np.float64), p["D"].astype(np.float64), self.blocks
            )
            self.W_hh[...] = self.cmap.W

    def loss_grad(
        self,
        x: np.ndarray,
        y: np.ndarray,
        mask: np.ndarray,
        n_threads: int | None,
    ) -> float:
        """Loss of a batch; the gradient lands in ``self.grad``."""
        self.refresh()
        p, g = self.p, self.g
        loss, gxh, ghh, ghy = core_loss_and_grad(
            p["W_xh"], self.W_hh, p["W_hy"], x, y, self._mask(mask, y.shape), n_threads
        )
        g["W_xh"][...] = gxh
        g["W_hy"][...] = ghy
        if self.cmap is not None:  # Cayley: refresh() set the map of this step
            dA, dD = self.cmap.pullback(ghh)
            g["A"][...] = dA
            g["D"][...] = dD
        else:
            g["W_hh"][...] = ghh
        return loss

    def rollout(self, x: np.ndarray, n_threads: int | None) -> np.ndarray:
        """Outputs for inputs ``x`` at the current parameters."""
        self.refresh()
        return rollout(
            self.p["W_xh"], self.W_hh, self.p["W_hy"], x, n_threads=n_threads
        )

    def arrays(self, theta: np.ndarray) -> dict[str, Any]:
        """Copies of the model arrays at parameter vector ``theta``."""
        v = self.views(theta.copy())
        out: dict[str, Any] = {"W_xh": v["W_xh"], "W_hy": v["W_hy"], "cayley": None}
        if self.cayley:
            cmap = CayleyMap(
                v["A"].astype(np.float64), v["D"].astype(np.float64), self.blocks
            )
            out["W_hh"] = cmap.W.astype(self.dtype)
            out["cayley"] = {"A": v["A"], "D": v["D"]}
            if self.blocks is not None:
                out["cayley"]["D_blocks"] = self.blocks.copy()
        else:
            out["W_hh"] = v["W_hh"]
        return out


class Adam:
    """PyTorch's Adam (no weight decay), in place on a flat buffer."""

    def __init__(
        self, theta: np.ndarray, betas: tuple[float, float], eps: float
    ) -> None:
        self.theta = theta
        self.m = np.zeros_like(theta)
        self.v = np.zeros_like(theta)
        self.tmp = np.empty_like(theta)
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0

    def step(self, g: np.ndarray, lr: float) -> None:
        self.t += 1
        b1, b2, m, v, tmp = self.b1, self.b2, self.m, self.v, self.tmp
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        bc1 = 1.0 - b1**self.t
        bc2_sqrt = math.sqrt(1.0 - b2**self.t)
        np.sqrt(v, out=tmp)
        tmp *= 1.0 / bc2_sqrt
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr / bc1
        self.theta -= tmp
