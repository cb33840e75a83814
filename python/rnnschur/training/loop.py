"""Adam training of one-layer tanh RNNs: :func:`train`.

The network is the paper's (eqs. 1-2): ``h_t = tanh(W_xh x_t + W_hh h_{t-1})``,
``h_0 = 0``, ``ŷ_t = W_hy h_t``, no biases (``b_h = b_y = 0``, not trained). The loss is
the masked mean squared error. Forward and BPTT run in the compiled core
(:func:`rnnschur.loss_and_grad`); this module holds the loop and its bookkeeping, and
:mod:`rnnschur.training.step` the optimizer state (see there for the precision rules).
A :class:`~rnnschur.training.TrainedModel` holds exactly the arrays the network was
trained and evaluated with.

Threads: only the compiled core runs threads (``config.n_threads``). The loop itself
makes no BLAS call (the Cayley map runs in Numba kernels on the calling thread, the
gradient norm in einsum's own loop), so no BLAS worker threads compete with the core's
and no BLAS thread setting can change the result.

Determinism: the seed is split with ``numpy.random.SeedSequence(seed).spawn(2)`` into an
initialisation stream and a data stream (training batches are drawn 16 at a time
with one ``task.sample`` call, then split); the held-out set is drawn from
``config.eval_seed`` (the same for every model). Same seed, machine and thread count
give bitwise identical parameters.

Divergence: a non-finite loss, gradient or held-out output, or a
:class:`~rnnschur.NonFiniteError` from the core, stops training with
:class:`~rnnschur.training.TrainingDiverged`, which carries the last good parameters.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .._validation import check_int
from .._version import library_version
from ..constructions import check_construction, init_params
from ..rnn import NonFiniteError
from ..tasks import CopyTask, Task, make_task
from .config import TrainConfig, curriculum_phases, default_config
from .evaluate import heldout_batch, score
from .model import TrainedModel, TrainingDiverged
from .step import Adam, BatchStream, FlatNetwork

__all__ = ["train"]


def _check_train_args(
    task: Task | str, construction: str, hidden: int, seed: int, config: Any
) -> tuple[Task, int, int, TrainConfig]:
    if isinstance(task, str):
        task = make_task(task)
    if not isinstance(task, Task):
        msg = f"task must be a Task or a task name; got {type(task).__name__}"
        raise TypeError(msg)
    check_construction(construction)
    hidden = check_int("hidden", hidden, 1)
    seed = check_int("seed", seed, 0)
    if config is None:
        config = default_config(task)
    if not isinstance(config, TrainConfig):
        msg = f"config must be a TrainConfig or None; got {type(config).__name__}"
        raise TypeError(msg)
    return task, hidden, seed, config


class _Run:
    """State of one training run: parameters, optimizer, data and history."""

    def __init__(
        self, task: Task, construction: str, hidden: int, seed: int, cfg: TrainConfig
    ) -> None:
        self.task, self.construction, self.hidden = task, construction, hidden
        self.seed, self.cfg = seed, cfg
        dtype = np.dtype(cfg.dtype)
        self.dtype = dtype
        init_ss, data_ss = np.random.SeedSequence(seed).spawn(2)
        init = init_params(
            construction,
            task.n_inputs,
            hidden,
            task.n_outputs,
            np.random.default_rng(init_ss),
        )
        self.data_rng = np.random.default_rng(data_ss)
        if cfg.copy_curriculum and not isinstance(task, CopyTask):
            msg = f"copy_curriculum is for the copy task only; got task {task.name!r}"
            raise ValueError(msg)
        self.phase_of_epoch = curriculum_phases(task, cfg)
        self.net = FlatNetwork(init, construction, dtype)
        self.adam = Adam(self.net.theta, cfg.betas, cfg.eps)
        self.last_good = self.net.theta.copy()
        self.heldout = heldout_batch(task, cfg.eval_size, cfg.eval_seed, dtype)
        keys = ["train_loss", "grad_norm", "lr", "eval_loss", "eval_fvu"]
        if isinstance(task, CopyTask):
            keys.append("eval_accuracy")
        self.history: dict[str, list[float]] = {k: [] for k in [*keys, "seconds"]}
        self.batches: BatchStream | None = None
        self.step = 0
        self.t0 = time.perf_counter()

    def snapshot(self, theta: np.ndarray) -> TrainedModel:
        """The model at parameter vector ``theta``, with the history so far."""
        return TrainedModel(
            **self.net.arrays(theta),
            task=self.task,
            construction=self.construction,
            hidden=self.hidden,
            config=self.cfg,
            seed=self.seed,
            history={k: list(v) for k, v in self.history.items()},
            version=library_version(),
        )

    def diverged(
        self,
        what: str,
        epoch: int,
        batch: int,
        step: int,
        cause: Exception | None = None,
    ) -> TrainingDiverged:
        msg = (
            f"non-finite {what} at epoch {epoch}, batch {batch} (step {step})"
            + (f": {cause}" if cause else "")
            + "; the last good parameters are in exc.model"
        )
        return TrainingDiverged(msg, epoch, batch, self.snapshot(self.last_good))

    def batch_step(
        self, batches: BatchStream, epoch: int, batch: int
    ) -> tuple[float, float]:
        """One Adam step on the next batch; returns its loss and pre-clip norm."""
        cfg, net, grad = self.cfg, self.net, self.net.grad
        x, y, mask = batches.next()
        try:
            loss = net.loss_grad(x, y, mask, cfg.n_threads)
        except NonFiniteError as exc:
            raise self.diverged(
                "loss or gradient", epoch, batch, self.step, exc
            ) from exc
        norm = math.sqrt(float(np.einsum("i,i->", grad, grad)))
        if not (math.isfinite(loss) and math.isfinite(norm)):
            if math.isfinite(loss) and np.all(np.isfinite(grad)):
                # The float32 sum of squares overflowed; the gradient is finite.
                g64 = grad.astype(np.float64)
                norm = math.sqrt(float(np.einsum("i,i->", g64, g64)))
            else:
                what = "loss" if not math.isfinite(loss) else "gradient"
                raise self.diverged(what, epoch, batch, self.step)
        if cfg.clip is not None and norm > cfg.clip:
            grad *= cfg.clip / norm
        np.copyto(self.last_good, net.theta)
        self.adam.step(grad, cfg.lr_at(self.step))
        self.step += 1
        return loss, norm

    def held_out_scores(self, epoch: int) -> dict[str, Any]:
        x_ev, y_ev, m_ev = self.heldout
        try:
            return score(
                self.task, self.net.rollout(x_ev, self.cfg.n_threads), y_ev, m_ev
            )
        except NonFiniteError as exc:
            last = self.cfg.batches_per_epoch - 1
            raise self.diverged(
                "held-out output", epoch, last, self.step - 1, exc
            ) from exc

    def record(self, loss_sum: float, norm_sum: float, sc: dict[str, Any]) -> None:
        h, n = self.history, self.cfg.batches_per_epoch
        h["train_loss"].append(loss_sum / n)
        h["grad_norm"].append(norm_sum / n)
        h["lr"].append(self.cfg.lr_at(self.step - 1))
        h["eval_loss"].append(sc["loss"])
        h["eval_fvu"].append(sc["fvu"])
        if "accuracy" in sc:
            h["eval_accuracy"].append(sc["accuracy"])
        h["seconds"].append(time.perf_counter() - self.t0)


class _Progress:
    """A tqdm bar over the Adam steps with the running loss (no-op when disabled)."""

    def __init__(self, enabled: bool, total: int, desc: str) -> None:
        self.bar: Any = None
        self.post: dict[str, str] = {}
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, mininterval=0.5, leave=True)

    def step(self, batch: int, loss_sum: float) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if batch % 32 == 31:  # running mean loss of the epoch so far
            self.post["loss"] = f"{loss_sum / (batch + 1):.4g}"
            self.bar.set_postfix(self.post, refresh=False)

    def epoch(self, train_loss: float, sc: dict[str, Any]) -> None:
        if self.bar is None:
            return
        self.post = {"loss": f"{train_loss:.4g}", "eval_fvu": f"{sc['fvu']:.4g}"}
        if "accuracy" in sc:
            self.post["acc"] = f"{sc['accuracy']:.4f}"
        self.bar.set_postfix(self.post, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_epoch(run: _Run, epoch: int, progress: _Progress) -> None:
    cfg = run.cfg
    phase = run.phase_of_epoch[epoch]
    if run.batches is None or phase is not run.batches.task:
        run.batches = BatchStream(phase, cfg.batch_size, run.data_rng, run.dtype)
    batches = run.batches
    loss_sum = 0.0
    norm_sum = 0.0
    for batch in range(cfg.batches_per_epoch):
        loss, norm = run.batch_step(batches, epoch, batch)
        loss_sum += loss
        norm_sum += norm
        progress.step(batch, loss_sum)
    sc = run.held_out_scores(epoch)
    run.record(loss_sum, norm_sum, sc)
    progress.epoch(run.history["train_loss"][-1], sc)


def train(
    task: Task | str,
    construction: str,
    hidden: int,
    *,
    seed: int,
    config: TrainConfig | None = None,
    progress: bool = True,
) -> TrainedModel:
    """Train a network with Adam.

    Parameters
    ----------
    task : Task or str
        A task instance, or its name (default parameters).
    construction : str
        ``"dense_default"``, ``"dense_orthogonal"``, ``"dense_normal"``, ``"cayley"`` or
        ``"cayley_free"`` (see :mod:`rnnschur.constructions`).
    hidden : int
        ``Nh``.
    seed : int
        Seeds initialisation and training batches.
    config : TrainConfig, optional
        Default :func:`~rnnschur.training.default_config` of the task.
    progress : bool
        Show a tqdm progress bar with the running loss.

    Returns
    -------
    TrainedModel
        Arrays in ``config.dtype``.

    Raises
    ------
    TrainingDiverged
        On a non-finite loss, gradient or held-out output; carries the last good
        parameters.
    """
    task, hidden, seed, cfg = _check_train_args(
        task, construction, hidden, seed, config
    )
    run = _Run(task, construction, hidden, seed, cfg)
    bar = _Progress(progress, cfg.total_steps, f"{task.name}/{construction}")
    run.t0 = time.perf_counter()
    try:
        for epoch in range(cfg.epochs):
            _run_epoch(run, epoch, bar)
    finally:
        bar.close()
    return run.snapshot(run.net.theta)
