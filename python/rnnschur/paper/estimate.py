"""A rough training-time estimate for the models a run still has to train."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..constructions import CAYLEY_CONSTRUCTIONS
from ..rnn import loss_and_grad, rollout
from ..tasks import Task
from ..training import curriculum_phases
from .models import checkpoint_path
from .settings import ModelSpec

__all__ = [
    "CAYLEY_STEP_OVERHEAD",
    "ESTIMATE_MARGIN",
    "STEP_OVERHEAD",
    "estimate_seconds",
    "human_duration",
]

#: Per-step cost outside ``loss_and_grad`` (Adam, clipping, batch slicing), seconds.
STEP_OVERHEAD = 60e-6
#: Extra per-step cost of the Cayley map and its pullback, seconds.
CAYLEY_STEP_OVERHEAD = 150e-6
#: Factor the announced estimate adds for what is not timed (start-up, saving).
ESTIMATE_MARGIN = 1.1
#: Timed calls per training shape (after one untimed call) and per held-out rollout.
_STEP_REPS = 5
_EVAL_REPS = 2


def _timed(fn: Callable[[], Any], reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def _weights(
    rng: np.random.Generator, task: Task, n: int, dtype: np.dtype[Any]
) -> list[np.ndarray]:
    shapes = ((n, task.n_inputs), (n, n), (task.n_outputs, n))
    return [(rng.standard_normal(s) / math.sqrt(s[-1])).astype(dtype) for s in shapes]


def estimate_seconds(
    specs: Sequence[ModelSpec], models_dir: str | os.PathLike[str]
) -> float:
    """Rough training time of the models of ``specs`` not yet in ``models_dir``.

    Times a few ``loss_and_grad`` calls (plus batch sampling) at each distinct training
    shape on this machine — the copy-task curriculum trains on shorter sequences in its
    early epochs — and multiplies by the number of Adam steps at that shape, adding
    :data:`STEP_OVERHEAD` per step (plus :data:`CAYLEY_STEP_OVERHEAD` for Cayley
    models) and one held-out rollout per epoch. Ablation and reporting are not counted.

    Returns
    -------
    float
        Seconds.
    """
    step_cost: dict[tuple[Any, ...], float] = {}
    eval_cost: dict[tuple[Any, ...], float] = {}
    rng = np.random.default_rng(0)
    total = 0.0
    for spec in dict.fromkeys(specs):
        if checkpoint_path(models_dir, spec).exists():
            continue
        cfg = spec.config
        dtype = np.dtype(cfg.dtype)
        task = spec.make_task()
        phases = (
            curriculum_phases(task, cfg) if task.name == "copy" else [task] * cfg.epochs
        )
        for phase in phases:
            key = (repr(phase.to_dict()), spec.hidden, cfg.batch_size, cfg.dtype)
            if key not in step_cost:
                w = _weights(rng, phase, spec.hidden, dtype)

                def step(
                    phase: Task = phase,
                    w: list[np.ndarray] = w,
                    b: int = cfg.batch_size,
                    dt: np.dtype[Any] = dtype,
                ) -> None:
                    x, y, mask = phase.sample(b, rng, dtype=dt)
                    loss_and_grad(w[0], w[1], w[2], x, y, mask)

                step_cost[key] = _timed(step, _STEP_REPS)
            overhead = STEP_OVERHEAD + (
                CAYLEY_STEP_OVERHEAD
                if spec.construction in CAYLEY_CONSTRUCTIONS
                else 0.0
            )
            total += (step_cost[key] + overhead) * cfg.batches_per_epoch
        ekey = (repr(task.to_dict()), spec.hidden, cfg.eval_size, cfg.dtype)
        if ekey not in eval_cost:
            x_ev = task.sample(cfg.eval_size, rng, split="test", dtype=dtype)[0]
            w = _weights(rng, task, spec.hidden, dtype)

            def run_eval(w: list[np.ndarray] = w, x_ev: np.ndarray = x_ev) -> None:
                rollout(w[0], w[1], w[2], x_ev)

            eval_cost[ekey] = _timed(run_eval, _EVAL_REPS)
        total += eval_cost[ekey] * cfg.epochs
    return total


def human_duration(seconds: float) -> str:
    """``"42 s"``, ``"3.5 min"`` or ``"1.2 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
