"""The paper's experiments as functions that return plain result tables.

A result table is a list of flat ``dict`` rows (str / int / float / None values only),
ready for CSV, JSON and markdown. :func:`run` drives a reproduction: it loads or
trains the networks (:func:`~rnnschur.paper.models.ensure_models`), takes each apart
(:func:`~rnnschur.paper.profile.ablation_profile`), and builds the tables of
:func:`copy_experiment` (section 3 / Figure 1), :func:`alpha_experiment` (Table 1) and
:func:`cross_task_experiment` (section 4 / Figure 2). ΔFVU and S_ΔT come from
:mod:`rnnschur.metrics`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .. import metrics
from ..ablation import BLOCK_NAMES
from ..training import TrainedModel
from .dynamics import FIXED_POINT_TASKS, dynamics_experiment
from .dynamics_claims import predictor_results
from .dynamics_figures import trajectory_panels
from .labels import TASK_LABELS, subset_label
from .models import ensure_models
from .profile import ablation_profile
from .settings import (
    EXPERIMENTS,
    ModelSpec,
    RunSettings,
    check_only,
    model_specs,
    settings_dict,
)

__all__ = [
    "alpha_experiment",
    "copy_experiment",
    "cross_task_experiment",
    "mean_sem",
    "run",
]

_Models = dict[ModelSpec, TrainedModel]
_Work = list[tuple[ModelSpec, TrainedModel]]


def _copy_work(models: _Models, settings: RunSettings) -> _Work:
    return [
        (spec, model)
        for spec, model in models.items()
        if spec.task == "copy" and spec.hidden in settings.copy_widths
    ]


def _alpha_work(models: _Models, settings: RunSettings) -> _Work:
    return [
        (spec, model)
        for spec, model in models.items()
        if spec.task == "copy"
        and spec.hidden == settings.alpha_width
        and spec.construction in settings.alpha_constructions
    ]


def _task_work(models: _Models, settings: RunSettings) -> _Work:
    return [
        (spec, model)
        for spec, model in models.items()
        if spec.task != "copy" and spec.task in settings.tasks
    ]


def copy_experiment(
    models: _Models,
    settings: RunSettings,
    *,
    tick: Callable[[], Any] | None = None,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Copy task (paper section 3 / Figure 1): all 8 subsets per model.

    Returns one row per (construction, width, seed, subset) with ``n_R``, the removed
    relative Schur mass of the subset, the mass of each single block
    (``mass_RR``/``mass_CR``/``mass_CC``), and the mean replay accuracy over the
    task's replay lags (``lags``).
    """
    rows = []
    for spec, model in _copy_work(models, settings):
        prof = ablation_profile(
            model, alpha=settings.alpha, eval_size=settings.eval_size, **kw
        )
        if tick is not None:
            tick()
        single = {
            s[0]: m
            for s, m in zip(prof["subsets"], prof["removed_mass"], strict=True)
            if len(s) == 1
        }
        for i, s in enumerate(prof["subsets"]):
            rows.append(
                {
                    "construction": spec.construction,
                    "hidden": spec.hidden,
                    "seed": spec.seed,
                    "alpha": settings.alpha,
                    "lags": getattr(model.task, "lags", None),
                    "n_R": prof["n_R"],
                    "subset": subset_label(s),
                    "removed": "+".join(s),
                    "removed_mass": prof["removed_mass"][i],
                    "accuracy": prof["accuracy"][i],
                    **{f"mass_{b}": single[b] for b in BLOCK_NAMES},
                }
            )
    return rows


def alpha_experiment(
    models: _Models,
    settings: RunSettings,
    *,
    tick: Callable[[], Any] | None = None,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Threshold sensitivity (paper Table 1): n_R, full, −T_CC, −T_C→R per α."""
    rows = []
    subsets = [(), ("CC",), ("CR",)]
    for spec, model in _alpha_work(models, settings):
        for a in settings.alphas:
            prof = ablation_profile(
                model, alpha=a, subsets=subsets, eval_size=settings.eval_size, **kw
            )
            if tick is not None:
                tick()
            acc = prof["accuracy"]
            rows.append(
                {
                    "alpha": a,
                    "construction": spec.construction,
                    "hidden": spec.hidden,
                    "seed": spec.seed,
                    "n_R": prof["n_R"],
                    "full": acc[0],
                    "-CC": acc[1],
                    "-CR": acc[2],
                    "mass_CC": prof["removed_mass"][1],
                    "mass_CR": prof["removed_mass"][2],
                }
            )
    return rows


def _last(values: Sequence[float] | None) -> float | None:
    return values[-1] if values else None


def mean_sem(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean, SEM and count of the finite values (None / NaN are not averaged: S_ΔT is
    undefined where a block is empty)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], float)
    if v.size == 0:
        return math.nan, math.nan, 0
    sem = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
    return float(v.mean()), sem, int(v.size)


def cross_task_experiment(
    models: _Models,
    settings: RunSettings,
    *,
    tick: Callable[[], Any] | None = None,
    **kw: Any,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Single-block ablations across tasks (paper section 4 / Figure 2).

    Returns
    -------
    per_seed : list of dict
        One row per (task, seed, block): full-model FVU, ablated FVU, ΔFVU, removed
        mass and S_ΔT (None where the block is empty).
    summary : list of dict
        One row per (task, block): mean, SEM and count over seeds of ΔFVU, S_ΔT and
        the full-model FVU, and the mean removed mass.
    """
    subsets = [(), ("RR",), ("CR",), ("CC",)]
    per_seed = []
    for spec, model in _task_work(models, settings):
        prof = ablation_profile(
            model,
            alpha=settings.alpha,
            subsets=subsets,
            eval_size=settings.eval_size,
            **kw,
        )
        if tick is not None:
            tick()
        full = prof["fvu"][0]
        for i, b in enumerate(BLOCK_NAMES, start=1):
            d = float(metrics.delta_fvu(prof["fvu"][i], full))
            s = float(metrics.s_delta_t(d, prof["removed_mass"][i]))
            per_seed.append(
                {
                    "task": spec.task,
                    "seed": spec.seed,
                    "block": b,
                    "n_R": prof["n_R"],
                    "fvu_full": full,
                    "fvu": prof["fvu"][i],
                    "delta_fvu": d,
                    "removed_mass": prof["removed_mass"][i],
                    "s_delta_t": None if math.isnan(s) else s,
                }
            )
    summary = []
    for t in settings.tasks:
        for b in BLOCK_NAMES:
            sel = [r for r in per_seed if r["task"] == t and r["block"] == b]
            if not sel:
                continue
            dm, ds, dn = mean_sem([r["delta_fvu"] for r in sel])
            sm, ss, sn = mean_sem([r["s_delta_t"] for r in sel])
            fm, fs, _ = mean_sem([r["fvu_full"] for r in sel])
            mm, _, _ = mean_sem([r["removed_mass"] for r in sel])
            summary.append(
                {
                    "task": t,
                    "block": b,
                    "n_seeds": dn,
                    "fvu_full_mean": fm,
                    "fvu_full_sem": fs,
                    "delta_fvu_mean": dm,
                    "delta_fvu_sem": ds,
                    "s_delta_t_mean": sm,
                    "s_delta_t_sem": ss,
                    "s_delta_t_n": sn,
                    "removed_mass_mean": mm,
                }
            )
    return per_seed, summary


def run(
    settings: RunSettings,
    models_dir: str | os.PathLike[str],
    *,
    only: Iterable[str] = EXPERIMENTS,
    jobs: int = 1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train (or reuse) the models and run the selected experiments.

    Returns a JSON-ready dict: ``"settings"``, ``"copy"``, ``"alpha"``,
    ``"tasks_per_seed"``, ``"tasks_summary"`` (tables of the experiments that ran), the
    models' training times and held-out scores in ``"models"``, and wall times in
    ``"timing"``.
    """
    only = check_only(only)
    t0 = time.perf_counter()
    specs = model_specs(settings, only)
    models = ensure_models(specs, models_dir, jobs=jobs, progress=progress, log=log)
    t_train = time.perf_counter() - t0
    results: dict[str, Any] = {
        "settings": settings_dict(settings),
        "only": list(only),
        "jobs": jobs,
        "models": [
            {
                "key": spec.key,
                "task": spec.task,
                "construction": spec.construction,
                "hidden": spec.hidden,
                "seed": spec.seed,
                "train_seconds": model.train_seconds,
                "n_threads": model.config.n_threads,
                "final_eval_fvu": _last(model.history.get("eval_fvu")),
                "final_eval_accuracy": _last(model.history.get("eval_accuracy")),
            }
            for spec, model in models.items()
        ],
    }
    n_profiles = (
        ("copy" in only) * len(_copy_work(models, settings))
        + ("alpha" in only) * len(_alpha_work(models, settings)) * len(settings.alphas)
        + ("tasks" in only) * len(_task_work(models, settings))
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_profiles, desc="ablation profiles", leave=True)
    tick = bar.update if bar is not None else None
    try:
        if "copy" in only:
            results["copy"] = copy_experiment(models, settings, tick=tick)
        if "alpha" in only:
            results["alpha"] = alpha_experiment(models, settings, tick=tick)
        if "tasks" in only:
            per_seed, summary = cross_task_experiment(models, settings, tick=tick)
            results["tasks_per_seed"] = per_seed
            results["tasks_summary"] = summary
    finally:
        if bar is not None:
            bar.close()
    t1 = time.perf_counter()
    _dynamics(results, models, settings, only, progress)
    results["timing"] = {
        "train_or_load_seconds": t_train,
        "dynamics_seconds": time.perf_counter() - t1,
        "total_seconds": time.perf_counter() - t0,
    }
    return results


def _dynamics(
    results: dict[str, Any],
    models: _Models,
    settings: RunSettings,
    only: Sequence[str],
    progress: bool,
) -> None:
    """The dynamics section (subspaces, fixed points, predictors) on the models of
    the copy and task experiments that ran."""
    work = dict(
        ("copy" in only) * _copy_work(models, settings)
        + ("tasks" in only) * _task_work(models, settings)
    )
    if not work:
        return
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(work), desc="subspaces, fixed points", leave=True)
    try:
        dyn = dynamics_experiment(
            work, settings, tick=bar.update if bar is not None else None
        )
    finally:
        if bar is not None:
            bar.close()
    results["subspaces"] = dyn["subspaces"]
    results["fixed_points"] = dyn["fixed_points"]
    results["continuation"] = dyn["continuation"]
    results["predictors"] = predictor_results(
        dyn["subspaces"], results.get("copy") or [], results.get("tasks_per_seed") or []
    )
    # Figure data (arrays; not written to results.json): the first seed of each task.
    results["_trajectory_rows"] = [
        (
            f"{TASK_LABELS[spec.task]}, seed {spec.seed}",
            trajectory_panels(model, alpha=settings.alpha, n_starts=settings.fp_starts),
        )
        for spec, model in work.items()
        if spec.task in FIXED_POINT_TASKS and spec.seed == min(settings.task_seeds)
    ]
