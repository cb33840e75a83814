"""The paper's experiments as functions that return plain result tables.

A result table is a list of flat ``dict`` rows (str / int / float / None values only),
ready for CSV, JSON and markdown. The pipeline is

1. :func:`model_specs` lists the networks an experiment needs (:class:`ModelSpec`);
2. :func:`ensure_models` loads them from a model directory or trains the missing ones
   (optionally in parallel processes), saving each checkpoint as soon as it is trained,
   so an interrupted run resumes where it stopped;
3. :func:`ablation_profile` takes one trained network apart: ordered real Schur form of
   ``W_hh`` (float64), split at ``α``, the requested ablation subsets, and one batched
   rollout of all variants on a fixed held-out batch;
4. :func:`copy_experiment`, :func:`alpha_experiment` and :func:`cross_task_experiment`
   turn profiles into the paper's tables (section 3, Table 1, section 4 / Figure 2).

The whole reproduction is driven by :class:`RunSettings` (``RunSettings.full()`` = the
paper's settings, ``RunSettings.quick()`` = a reduced run) through :func:`run`.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .ablation import ablate
from .rnn import loss_and_grad, rollout
from .schur import ordered_schur, schur_split
from .tasks import Task, make_task
from .train import (
    COPY_CONFIG,
    PAPER_CONFIG,
    TrainConfig,
    _curriculum_phases,
    heldout_batch,
    load,
    save,
    train,
)

__all__ = [
    "BLOCKS",
    "CONSTRUCTIONS",
    "SUBSETS",
    "ModelSpec",
    "RunSettings",
    "ablation_profile",
    "alpha_experiment",
    "copy_experiment",
    "cross_task_experiment",
    "ensure_models",
    "estimate_seconds",
    "model_specs",
    "run",
    "subset_label",
]

#: Coupling blocks of ``N``: ``RR`` = T_RR, ``CR`` = T_C→R (rows R, columns C), ``CC`` = T_CC.
BLOCKS = ("RR", "CR", "CC")

#: The four recurrent constructions, in the order tables list them.
CONSTRUCTIONS = ("dense_default", "dense_orthogonal", "dense_normal", "cayley")

#: All 8 ablation subsets in the order tables list them: by size, then by BLOCKS order.
SUBSETS: tuple[tuple[str, ...], ...] = (
    (),
    ("RR",),
    ("CR",),
    ("CC",),
    ("RR", "CR"),
    ("RR", "CC"),
    ("CR", "CC"),
    ("RR", "CR", "CC"),
)

#: Seed of the held-out batch every ablation is scored on. It differs from the
#: training-time monitor set (``TrainConfig.eval_seed``), so reported numbers come from
#: sequences the run never looked at while training.
REPORT_EVAL_SEED = 918_457

_LABELS = {"RR": "T_RR", "CR": "T_C→R", "CC": "T_CC"}


def subset_label(subset: Iterable[str]) -> str:
    """Human-readable name of an ablation subset: ``"full"`` or ``"−T_RR −T_CC"``."""
    subset = tuple(subset)
    if not subset:
        return "full"
    return " ".join("−" + _LABELS[b] for b in subset)


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    """One network to train: task, construction, width, seed and settings.

    ``key`` names its checkpoint; it carries a digest of the task parameters and the
    training configuration (without ``n_threads``), so runs with other settings never
    pick up each other's models from a shared directory.
    """

    task: str
    construction: str
    hidden: int
    seed: int
    config: TrainConfig
    task_params: tuple[tuple[str, Any], ...] = ()

    def make_task(self) -> Task:
        return make_task(self.task, **dict(self.task_params))

    @property
    def key(self) -> str:
        cfg = self.config.to_dict()
        cfg.pop("n_threads", None)
        blob = json.dumps(
            {"task": self.make_task().to_dict(), "config": cfg}, sort_keys=True
        ).encode()
        digest = hashlib.sha256(blob).hexdigest()[:10]
        return f"{self.task}_{self.construction}_h{self.hidden}_s{self.seed}_{digest}"


def _train_and_save(spec: ModelSpec, path: str, n_threads: int | None, progress: bool):
    cfg = dataclasses.replace(spec.config, n_threads=n_threads)
    model = train(
        spec.make_task(),
        spec.construction,
        spec.hidden,
        seed=spec.seed,
        config=cfg,
        progress=progress,
    )
    save(path, model)
    return path


def ensure_models(
    specs: Sequence[ModelSpec],
    models_dir: str | os.PathLike,
    *,
    jobs: int = 1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[ModelSpec, Any]:
    """Load every model in ``specs`` from ``models_dir``, training the missing ones.

    Parameters
    ----------
    specs : sequence of ModelSpec
    models_dir : path
        Checkpoints live at ``models_dir / (spec.key + ".npz")``; each is written
        (atomically) as soon as its training ends, so an interrupted call loses at most
        the models in flight.
    jobs : int
        Independent models trained at once, each in its own process with
        ``max(1, cpu_count // jobs)`` core threads. ``1`` trains in this process.
        Bitwise reproducibility holds for a fixed ``jobs`` value (the thread count
        changes the summation order of the batch-sharded gradients).
    progress : bool
        Progress bars.
    log : callable, optional
        Receives one line per model trained or loaded.

    Returns
    -------
    dict mapping each spec to its :class:`~rnnschur.train.TrainedModel`.
    """
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        msg = f"jobs must be a positive integer; got {jobs!r}"
        raise ValueError(msg)
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _line: None)
    paths = {spec: models_dir / f"{spec.key}.npz" for spec in specs}
    missing = [s for s in dict.fromkeys(specs) if not paths[s].exists()]
    if missing:
        say(f"training {len(missing)} model(s), {len(specs) - len(missing)} reused")
    cores = os.cpu_count() or 1
    if jobs == 1 or len(missing) <= 1:
        for spec in missing:
            _train_and_save(spec, str(paths[spec]), None, progress)
            say(f"trained {paths[spec].name}")
    else:
        n_threads = max(1, cores // jobs)
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {
                pool.submit(_train_and_save, s, str(paths[s]), n_threads, False): s
                for s in missing
            }
            for fut in cf.as_completed(futures):
                fut.result()
                say(f"trained {paths[futures[fut]].name}")
    return {spec: load(paths[spec]) for spec in specs}


def estimate_seconds(
    specs: Sequence[ModelSpec], models_dir: str | os.PathLike
) -> float:
    """Rough training time of the models of ``specs`` not yet in ``models_dir``.

    Times a few ``loss_and_grad`` calls (plus batch sampling) at each distinct training
    shape on this machine — the copy-task curriculum trains on shorter sequences in its
    early epochs — and multiplies by the number of Adam steps at that shape, adding a
    fixed per-step allowance for the optimizer (more for the Cayley map) and one
    held-out rollout per epoch. Ablation and reporting are not counted.
    """
    models_dir = Path(models_dir)
    step_cost: dict[tuple, float] = {}
    eval_cost: dict[tuple, float] = {}
    rng = np.random.default_rng(0)

    def weights(task, n, dtype):
        shapes = ((n, task.n_inputs), (n, n), (task.n_outputs, n))
        return [
            (rng.standard_normal(s) / math.sqrt(s[-1])).astype(dtype) for s in shapes
        ]

    def timed(fn, reps):
        fn()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps

    total = 0.0
    for spec in dict.fromkeys(specs):
        if (models_dir / f"{spec.key}.npz").exists():
            continue
        cfg = spec.config
        dtype = np.dtype(cfg.dtype)
        task = spec.make_task()
        phases = (
            _curriculum_phases(task, cfg)
            if task.name == "copy"
            else [task] * cfg.epochs
        )
        for phase in phases:
            key = (repr(phase.to_dict()), spec.hidden, cfg.batch_size, cfg.dtype)
            if key not in step_cost:
                w = weights(phase, spec.hidden, dtype)

                def step(phase=phase, w=w, b=cfg.batch_size, dt=dtype):
                    x, y, mask = phase.sample(b, rng, dtype=dt)
                    loss_and_grad(*w, x, y, mask)

                step_cost[key] = timed(step, 5)
            overhead = 60e-6 + (150e-6 if spec.construction == "cayley" else 0.0)
            total += (step_cost[key] + overhead) * cfg.batches_per_epoch
        ekey = (repr(task.to_dict()), spec.hidden, cfg.eval_size, cfg.dtype)
        if ekey not in eval_cost:
            x_ev = task.sample(cfg.eval_size, rng, split="test", dtype=dtype)[0]
            w = weights(task, spec.hidden, dtype)
            eval_cost[ekey] = timed(lambda w=w, x_ev=x_ev: rollout(*w, x_ev), 2)
        total += eval_cost[ekey] * cfg.epochs
    return total


# --------------------------------------------------------------------------- ablation


def ablation_profile(
    model,
    *,
    alpha: float = 0.9,
    subsets: Sequence[Sequence[str]] = SUBSETS,
    eval_size: int = 1024,
    eval_seed: int = REPORT_EVAL_SEED,
    n_threads: int | None = None,
) -> dict[str, Any]:
    """Ablate Schur coupling subsets of one trained network and score every variant.

    The ordered real Schur form of ``model.W_hh`` is computed in float64, split at
    ``alpha``, and each subset's ``W̃(S) = Q Z_S(T) Qᵀ`` is rounded to the model's dtype;
    all variants run in one stacked rollout on the same held-out batch, with input and
    readout weights untouched. The empty subset is scored with the original ``W_hh``
    (not its reconstruction, which differs by rounding only).

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
        ``"accuracy"`` (lists aligned with ``subsets``), and ``"mass"``: the relative
        Frobenius mass ``‖T_b‖_F / ‖T‖_F`` of each block ``b``.
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
    t_norm = float(np.linalg.norm(form.T))
    mass = {}
    for b in BLOCKS:
        sel = np.asarray(getattr(split, b), dtype=bool)
        mass[b] = float(np.linalg.norm(form.T[sel]) / t_norm) if t_norm > 0 else 0.0
    out: dict[str, Any] = {
        "n": int(W.shape[0]),
        "n_R": int(split.n_R),
        "alpha": float(alpha),
        "spectral_radius": float(np.max(np.abs(form.eigvals))),
        "schur_residual": float(form.residual),
        "subsets": subsets,
        "removed_mass": [float(m) for m in np.asarray(abl.removed_mass)],
        "fvu": [float(v) for v in metrics.fvu(y_hat, y, mask)],
        "mass": mass,
    }
    if model.task.name == "copy":
        out["accuracy"] = [float(a) for a in metrics.replay_accuracy(y_hat, y, mask)]
    return out


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RunSettings:
    """Everything that differs between a full and a quick reproduction."""

    mode: str
    copy_widths: tuple[int, ...]
    copy_constructions: tuple[str, ...]
    copy_seeds: tuple[int, ...]
    copy_config: TrainConfig
    alpha: float
    alphas: tuple[float, ...]
    alpha_width: int
    alpha_constructions: tuple[str, ...]
    tasks: tuple[str, ...]
    task_seeds: tuple[int, ...]
    task_hidden: int
    task_construction: str
    task_config: TrainConfig
    eval_size: int
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def full(cls) -> RunSettings:
        """The paper's settings (sections 3-4; copy-task training: ``COPY_CONFIG``)."""
        return cls(
            mode="full",
            copy_widths=(56, 64, 72),
            copy_constructions=CONSTRUCTIONS,
            copy_seeds=(0,),
            copy_config=COPY_CONFIG,
            alpha=0.9,
            alphas=(0.85, 0.90, 0.95),
            alpha_width=72,
            alpha_constructions=("dense_orthogonal", "cayley"),
            tasks=("flipflop", "sine", "cdi"),
            task_seeds=(0, 1, 2),
            task_hidden=64,
            task_construction="dense_orthogonal",
            task_config=PAPER_CONFIG,
            eval_size=1024,
        )

    @classmethod
    def quick(cls) -> RunSettings:
        """A reduced run of the whole pipeline in a few minutes on 2 cores.

        The neuroscience-style tasks keep the paper's settings (they train in seconds);
        the copy task runs at Nh = 72 only, with 40 epochs on 16 replay lags instead of
        the 120-epoch curriculum of ``COPY_CONFIG``.
        """
        full = cls.full()
        return dataclasses.replace(
            full,
            mode="quick",
            copy_widths=(72,),
            copy_config=dataclasses.replace(
                COPY_CONFIG, epochs=40, copy_curriculum=((0, 16),)
            ),
            eval_size=512,
            notes=(
                (
                    "QUICK MODE: reduced settings — copy task at Nh = 72 only, trained "
                    "40 epochs on 16 replay lags (the full run: Nh ∈ {56, 64, 72}, "
                    "120-epoch curriculum up to 128 lags); 512 held-out sequences per "
                    "model (full: 1024). Run without --quick for the paper's settings."
                ),
            ),
        )


def model_specs(
    settings: RunSettings, only: Iterable[str] = ("copy", "alpha", "tasks")
):
    """The networks the selected experiments need (duplicates removed, stable order)."""
    only = set(only)
    specs: list[ModelSpec] = []
    if "copy" in only:
        for c in settings.copy_constructions:
            for n in settings.copy_widths:
                for s in settings.copy_seeds:
                    specs.append(ModelSpec("copy", c, n, s, settings.copy_config))
    if "alpha" in only:
        for c in settings.alpha_constructions:
            for s in settings.copy_seeds:
                specs.append(
                    ModelSpec("copy", c, settings.alpha_width, s, settings.copy_config)
                )
    if "tasks" in only:
        for t in settings.tasks:
            for s in settings.task_seeds:
                specs.append(
                    ModelSpec(
                        t,
                        settings.task_construction,
                        settings.task_hidden,
                        s,
                        settings.task_config,
                    )
                )
    return list(dict.fromkeys(specs))


# --------------------------------------------------------------------------- experiments


def copy_experiment(
    models: dict[ModelSpec, Any], settings: RunSettings, *, tick=None, **kw
):
    """Copy task (paper section 3 / Figure 1): all 8 subsets per model.

    Returns one row per (construction, width, seed, subset) with ``n_R``, the removed
    relative Schur mass and the mean replay accuracy over the 128 lags.
    """
    rows = []
    for spec, model in models.items():
        if spec.task != "copy":
            continue
        if spec.hidden not in settings.copy_widths:
            continue
        prof = ablation_profile(
            model, alpha=settings.alpha, eval_size=settings.eval_size, **kw
        )
        if tick is not None:
            tick()
        for i, s in enumerate(prof["subsets"]):
            rows.append(
                {
                    "construction": spec.construction,
                    "hidden": spec.hidden,
                    "seed": spec.seed,
                    "alpha": settings.alpha,
                    "n_R": prof["n_R"],
                    "subset": subset_label(s),
                    "removed": "+".join(s),
                    "removed_mass": prof["removed_mass"][i],
                    "accuracy": prof["accuracy"][i],
                    "mass_RR": prof["mass"]["RR"],
                    "mass_CR": prof["mass"]["CR"],
                    "mass_CC": prof["mass"]["CC"],
                }
            )
    return rows


def alpha_experiment(
    models: dict[ModelSpec, Any], settings: RunSettings, *, tick=None, **kw
):
    """Threshold sensitivity (paper Table 1): n_R, full, −T_CC, −T_C→R per α."""
    rows = []
    subsets = [(), ("CC",), ("CR",)]
    for spec, model in models.items():
        if spec.task != "copy" or spec.hidden != settings.alpha_width:
            continue
        if spec.construction not in settings.alpha_constructions:
            continue
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


def _mean_sem(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], float)
    if v.size == 0:
        return math.nan, math.nan
    sem = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
    return float(v.mean()), sem


def cross_task_experiment(
    models: dict[ModelSpec, Any], settings: RunSettings, *, tick=None, **kw
):
    """Single-block ablations across tasks (paper section 4 / Figure 2).

    Returns
    -------
    per_seed : list of dict
        One row per (task, seed, block): full-model FVU, ablated FVU, ΔFVU, removed
        mass and S_ΔT.
    summary : list of dict
        One row per (task, block): mean ± SEM over seeds of ΔFVU and S_ΔT, and of the
        full-model FVU.
    """
    subsets = [(), ("RR",), ("CR",), ("CC",)]
    per_seed = []
    for spec, model in models.items():
        if spec.task not in settings.tasks or spec.task == "copy":
            continue
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
        for i, b in enumerate(BLOCKS, start=1):
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
        for b in BLOCKS:
            sel = [r for r in per_seed if r["task"] == t and r["block"] == b]
            if not sel:
                continue
            dm, ds = _mean_sem([r["delta_fvu"] for r in sel])
            sm, ss = _mean_sem([r["s_delta_t"] for r in sel])
            fm, fs = _mean_sem([r["fvu_full"] for r in sel])
            mm, _ = _mean_sem([r["removed_mass"] for r in sel])
            summary.append(
                {
                    "task": t,
                    "block": b,
                    "n_seeds": len(sel),
                    "fvu_full_mean": fm,
                    "fvu_full_sem": fs,
                    "delta_fvu_mean": dm,
                    "delta_fvu_sem": ds,
                    "s_delta_t_mean": sm,
                    "s_delta_t_sem": ss,
                    "removed_mass_mean": mm,
                }
            )
    return per_seed, summary


def run(
    settings: RunSettings,
    models_dir: str | os.PathLike,
    *,
    only: Iterable[str] = ("copy", "alpha", "tasks"),
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
    only = tuple(dict.fromkeys(only))
    unknown = set(only) - {"copy", "alpha", "tasks"}
    if unknown:
        msg = f"only must name experiments among copy, alpha, tasks; got {sorted(unknown)}"
        raise ValueError(msg)
    t0 = time.perf_counter()
    specs = model_specs(settings, only)
    models = ensure_models(specs, models_dir, jobs=jobs, progress=progress, log=log)
    t_train = time.perf_counter() - t0
    results: dict[str, Any] = {
        "settings": _settings_dict(settings),
        "only": list(only),
        "models": [
            {
                "key": spec.key,
                "task": spec.task,
                "construction": spec.construction,
                "hidden": spec.hidden,
                "seed": spec.seed,
                "train_seconds": model.train_seconds,
                "final_eval_fvu": (model.history.get("eval_fvu") or [None])[-1],
                "final_eval_accuracy": (model.history.get("eval_accuracy") or [None])[
                    -1
                ],
            }
            for spec, model in models.items()
        ],
    }
    n_profiles = 0
    for spec in models:
        if spec.task == "copy":
            n_profiles += ("copy" in only) and spec.hidden in settings.copy_widths
            n_profiles += (
                ("alpha" in only)
                and spec.hidden == settings.alpha_width
                and spec.construction in settings.alpha_constructions
            ) * len(settings.alphas)
        else:
            n_profiles += "tasks" in only
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
    results["timing"] = {
        "train_or_load_seconds": t_train,
        "total_seconds": time.perf_counter() - t0,
    }
    return results


def _settings_dict(settings: RunSettings) -> dict[str, Any]:
    d = dataclasses.asdict(settings)
    d["copy_config"] = settings.copy_config.to_dict()
    d["task_config"] = settings.task_config.to_dict()
    return d
