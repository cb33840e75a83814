"""Ablation profiles: one trained network taken apart in ordered Schur coordinates and
every variant scored on a held-out batch; and the text table ``rnnschur ablate``
prints."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..ablation import DEFAULT_SUBSETS, ablate
from ..rnn import rollout
from ..schur import ordered_schur, schur_split
from ..tasks import Task, make_task
from ..training import TrainedModel, heldout_batch, load, score
from .labels import subset_label
from .settings import DEFAULT_ALPHA, DEFAULT_EVAL_SIZE, REPORT_EVAL_SEED

__all__ = ["ablation_profile", "ablation_table", "parse_task"]


def ablation_profile(
    model: TrainedModel,
    *,
    alpha: float = DEFAULT_ALPHA,
    subsets: Sequence[Sequence[str]] = DEFAULT_SUBSETS,
    eval_size: int = DEFAULT_EVAL_SIZE,
    eval_seed: int = REPORT_EVAL_SEED,
    n_threads: int | None = None,
) -> dict[str, Any]:
    """Ablate Schur coupling subsets of one trained network and score every variant.

    The ordered real Schur form of ``model.W_hh`` is computed in float64, split at
    ``alpha``, and each subset's ``W̃(S) = Q Z_S(T) Qᵀ`` is rounded to the model's dtype;
    all variants run in one stacked rollout on the same held-out batch, with input and
    readout weights untouched. The empty subset is scored with the original ``W_hh``
    (not its reconstruction, which differs by rounding only). Scores come from
    :func:`rnnschur.training.score`.

    Parameters
    ----------
    model : TrainedModel
    alpha : float in (0, 1]
    subsets : sequence of tuples of block names
    eval_size, eval_seed : int
        Held-out batch ``task.sample(eval_size, default_rng(eval_seed), split="test")``.
    n_threads : int, optional
        Core threads for the rollout.

    Returns
    -------
    dict
        ``"n_R"``, ``"n"``, ``"alpha"``, ``"spectral_radius"``, ``"schur_residual"``,
        ``"subsets"`` (tuples), ``"removed_mass"``, ``"fvu"`` and, for the copy task,
        ``"accuracy"`` (lists aligned with ``subsets``).
    """
    subsets = [tuple(s) for s in subsets]
    W = np.asarray(model.W_hh, dtype=np.float64)
    form = ordered_schur(W)
    split = schur_split(form, alpha)
    abl = ablate(form, split, subsets=subsets)
    dtype = model.W_xh.dtype
    stack = np.array(abl.W, dtype=dtype)
    for i, s in enumerate(subsets):
        if not s:
            stack[i] = model.W_hh
    x, y, mask = heldout_batch(model.task, eval_size, eval_seed, dtype=dtype)
    y_hat = rollout(model.W_xh, stack, model.W_hy, x, n_threads=n_threads)
    scores = score(model.task, y_hat, y, mask)
    out: dict[str, Any] = {
        "n": int(W.shape[0]),
        "n_R": int(split.n_R),
        "alpha": float(alpha),
        "spectral_radius": float(np.max(np.abs(form.eigvals))),
        "schur_residual": float(form.residual),
        "subsets": subsets,
        "removed_mass": [float(m) for m in np.asarray(abl.removed_mass)],
        "fvu": [float(v) for v in np.atleast_1d(scores["fvu"])],
    }
    if "accuracy" in scores:
        out["accuracy"] = [float(a) for a in np.atleast_1d(scores["accuracy"])]
    return out


def parse_task(spec: str) -> Task:
    """A task from ``NAME`` or ``NAME:key=value,...`` (e.g. ``copy:lags=256``).

    Values are read as int, then float, then kept as text.
    """
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            msg = f"task parameters must be key=value pairs; got {item!r} in {spec!r}"
            raise ValueError(msg)
        for convert in (int, float, str):
            try:
                params[key.strip()] = convert(value)
                break
            except ValueError:
                continue
    return make_task(name.strip(), **params)


def _with_task(model: TrainedModel, task: str) -> TrainedModel:
    t = parse_task(task)
    if (t.n_inputs, t.n_outputs) != (model.W_xh.shape[1], model.W_hy.shape[0]):
        msg = (
            f"task {task!r} has {t.n_inputs} inputs / {t.n_outputs} outputs; the "
            f"model has {model.W_xh.shape[1]} / {model.W_hy.shape[0]}"
        )
        raise ValueError(msg)
    return dataclasses.replace(model, task=t)


def ablation_table(
    path: str | os.PathLike[str],
    *,
    alpha: float = DEFAULT_ALPHA,
    task: str | None = None,
    eval_size: int = DEFAULT_EVAL_SIZE,
) -> str:
    """The 8-subset ablation table of one checkpoint, as text.

    Parameters
    ----------
    path : path to a checkpoint written by :func:`rnnschur.save`
    alpha : float in (0, 1]
        Split threshold.
    task : str, optional
        Evaluate on this task instead of the checkpoint's own: ``NAME`` (default
        parameters) or ``NAME:key=value,...``, e.g. ``copy:lags=256`` to score replay
        beyond the trained horizon. Its input and output widths must match the
        network's.
    eval_size : int
        Held-out sequences.

    Returns
    -------
    str
        A header line and one line per subset: removed Schur mass and the held-out
        metric (replay accuracy for the copy task; FVU, ΔFVU and S_ΔT otherwise).
    """
    model = load(path)
    if task is not None:
        model = _with_task(model, task)
    prof = ablation_profile(
        model, alpha=alpha, subsets=DEFAULT_SUBSETS, eval_size=eval_size
    )
    metric = "accuracy" if "accuracy" in prof else "fvu"
    lines = [
        (
            f"{Path(path).name}: task {model.task.name}, {model.construction}, "
            f"Nh = {prof['n']}, α = {alpha}, n_R = {prof['n_R']}, "
            f"ρ(W) = {prof['spectral_radius']:.4f}"
        ),
        f"{'subset':<24} {'removed mass':>12} {metric:>10}"
        + ("" if metric == "accuracy" else f" {'ΔFVU':>10} {'S_ΔT':>10}"),
    ]
    for i, s in enumerate(prof["subsets"]):
        line = f"{subset_label(s):<24} {prof['removed_mass'][i]:>12.4f} "
        line += f"{prof[metric][i]:>10.4f}"
        if metric == "fvu":
            d = float(metrics.delta_fvu(prof["fvu"][i], prof["fvu"][0]))
            s_dt = float(metrics.s_delta_t(d, prof["removed_mass"][i]))
            undefined = math.isnan(s_dt)  # nothing removed
            line += f" {d:>10.4f} " + (f"{'–':>10}" if undefined else f"{s_dt:>10.4g}")
        lines.append(line)
    return "\n".join(lines)
