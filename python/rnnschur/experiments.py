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

import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .ablation import BLOCK_NAMES, DEFAULT_SUBSETS, ablate
from .constructions import CONSTRUCTIONS
from .rnn import loss_and_grad, rollout
from .schur import ordered_schur, schur_split
from .tasks import Task, make_task
from .train import (
    COPY_CONFIG,
    PAPER_CONFIG,
    CheckpointError,
    TrainConfig,
    _curriculum_phases,
    heldout_batch,
    load,
    save,
    train,
)

__all__ = [
    "BLOCKS",
    "BLOCK_LABELS",
    "CONSTRUCTIONS",
    "EXPERIMENTS",
    "SUBSETS",
    "ModelSpec",
    "RunSettings",
    "Terminated",
    "ablation_profile",
    "alpha_experiment",
    "check_only",
    "copy_experiment",
    "cross_task_experiment",
    "ensure_models",
    "estimate_seconds",
    "model_specs",
    "run",
    "subset_label",
]

#: Coupling blocks of ``N`` (``RR`` = T_RR, ``CR`` = T_C→R, ``CC`` = T_CC) and all 8
#: ablation subsets, in the order tables list them (by size, then by block order).
BLOCKS = BLOCK_NAMES
SUBSETS = DEFAULT_SUBSETS

#: The experiments :func:`run` knows, by the names ``--only`` takes.
EXPERIMENTS = ("copy", "alpha", "tasks")

#: Seed of the held-out batch every ablation is scored on. It differs from the
#: training-time monitor set (``TrainConfig.eval_seed``), so reported numbers come from
#: sequences the run never looked at while training.
REPORT_EVAL_SEED = 918_457

#: Plain-text names of the blocks, as tables print them.
BLOCK_LABELS = {"RR": "T_RR", "CR": "T_C→R", "CC": "T_CC"}


def subset_label(subset: Iterable[str]) -> str:
    """Human-readable name of an ablation subset: ``"full"`` or ``"−T_RR −T_CC"``."""
    subset = tuple(subset)
    if not subset:
        return "full"
    return " ".join("−" + BLOCK_LABELS[b] for b in subset)


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


def _worker_init():
    # The parent decides when to stop: a Ctrl-C reaches the whole process group, and
    # workers that died on it would only make the pool hand them the next model.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _train_in_worker(args):
    return _train_and_save(*args)


class Terminated(Exception):
    """SIGTERM arrived while models were training in worker processes."""


def _load_existing(paths, say) -> dict:
    """Checkpoints that load; unreadable ones are moved aside (``.corrupt``) so that
    they are trained again instead of stopping every future run."""
    models = {}
    for spec, path in paths.items():
        if not path.exists():
            continue
        try:
            models[spec] = load(path)
        except CheckpointError as exc:
            aside = path.with_name(path.name + ".corrupt")
            path.replace(aside)
            say(f"warning: {exc}; moved to {aside.name}, training it again")
    return models


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
        the models in flight. A checkpoint that does not load (truncated, tampered, an
        unknown format version) is renamed ``*.npz.corrupt`` and trained again.
    jobs : int
        Independent models trained at once, each in its own process with
        ``max(1, cpu_count // jobs)`` core threads. ``1`` trains in this process.
        Bitwise reproducibility holds for a fixed ``jobs`` value (the thread count
        changes the summation order of the batch-sharded gradients). On Ctrl-C or
        SIGTERM the worker processes are terminated at once; finished checkpoints stay.
    progress : bool
        Progress bars (per model with ``jobs == 1``, over models otherwise).
    log : callable, optional
        Receives one line per model trained, and warnings.

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
    specs = list(dict.fromkeys(specs))
    paths = {spec: models_dir / f"{spec.key}.npz" for spec in specs}
    models = _load_existing(paths, say)
    missing = [s for s in specs if s not in models]
    if missing:
        say(f"training {len(missing)} model(s), {len(models)} reused")
    if jobs == 1 or len(missing) <= 1:
        for spec in missing:
            _train_and_save(spec, str(paths[spec]), None, progress)
            say(f"trained {paths[spec].name}")
    else:
        _train_parallel(missing, paths, jobs, progress, say)
    for spec in missing:
        models[spec] = load(paths[spec])
    return {spec: models[spec] for spec in specs}


def _train_parallel(missing, paths, jobs, progress, say) -> None:
    n_threads = max(1, (os.cpu_count() or 1) // jobs)
    work = [(s, str(paths[s]), n_threads, False) for s in missing]
    ctx = multiprocessing.get_context("spawn")

    def on_term(_signum, _frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, on_term)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(work), desc=f"models ({jobs} processes)", leave=True)
    pool = ctx.Pool(jobs, initializer=_worker_init)
    try:
        for path in pool.imap_unordered(_train_in_worker, work):
            say(f"trained {Path(path).name}")
            if bar is not None:
                bar.update(1)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
        signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()


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
    out: dict[str, Any] = {
        "n": int(W.shape[0]),
        "n_R": int(split.n_R),
        "alpha": float(alpha),
        "spectral_radius": float(np.max(np.abs(form.eigvals))),
        "schur_residual": float(form.residual),
        "subsets": subsets,
        "removed_mass": [float(m) for m in np.asarray(abl.removed_mass)],
        "fvu": [float(v) for v in metrics.fvu(y_hat, y, mask)],
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


def model_specs(settings: RunSettings, only: Iterable[str] = EXPERIMENTS):
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


def _copy_work(models, settings):
    return [
        (spec, model)
        for spec, model in models.items()
        if spec.task == "copy" and spec.hidden in settings.copy_widths
    ]


def _alpha_work(models, settings):
    return [
        (spec, model)
        for spec, model in models.items()
        if spec.task == "copy"
        and spec.hidden == settings.alpha_width
        and spec.construction in settings.alpha_constructions
    ]


def _task_work(models, settings):
    return [
        (spec, model)
        for spec, model in models.items()
        if spec.task != "copy" and spec.task in settings.tasks
    ]


def copy_experiment(
    models: dict[ModelSpec, Any], settings: RunSettings, *, tick=None, **kw
):
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
                    "lags": model.task.lags,
                    "n_R": prof["n_R"],
                    "subset": subset_label(s),
                    "removed": "+".join(s),
                    "removed_mass": prof["removed_mass"][i],
                    "accuracy": prof["accuracy"][i],
                    **{f"mass_{b}": single[b] for b in BLOCKS},
                }
            )
    return rows


def alpha_experiment(
    models: dict[ModelSpec, Any], settings: RunSettings, *, tick=None, **kw
):
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


def _mean_sem(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean, SEM and count of the finite values (None / NaN are not averaged: S_ΔT is
    undefined where a block is empty)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], float)
    if v.size == 0:
        return math.nan, math.nan, 0
    sem = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
    return float(v.mean()), sem, int(v.size)


def cross_task_experiment(
    models: dict[ModelSpec, Any], settings: RunSettings, *, tick=None, **kw
):
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
            dm, ds, dn = _mean_sem([r["delta_fvu"] for r in sel])
            sm, ss, sn = _mean_sem([r["s_delta_t"] for r in sel])
            fm, fs, _ = _mean_sem([r["fvu_full"] for r in sel])
            mm, _, _ = _mean_sem([r["removed_mass"] for r in sel])
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
    models_dir: str | os.PathLike,
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
        "settings": _settings_dict(settings),
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
                "final_eval_fvu": (model.history.get("eval_fvu") or [None])[-1],
                "final_eval_accuracy": (model.history.get("eval_accuracy") or [None])[
                    -1
                ],
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
    results["timing"] = {
        "train_or_load_seconds": t_train,
        "total_seconds": time.perf_counter() - t0,
    }
    return results


def check_only(only: Iterable[str]) -> tuple[str, ...]:
    """Validate an experiment selection; returns it as a duplicate-free tuple."""
    if isinstance(only, str):
        only = (only,)
    only = tuple(dict.fromkeys(only))
    unknown = sorted(set(only) - set(EXPERIMENTS))
    if unknown:
        msg = f"only must name experiments among {EXPERIMENTS}; got {unknown}"
        raise ValueError(msg)
    return only


def _settings_dict(settings: RunSettings) -> dict[str, Any]:
    d = dataclasses.asdict(settings)
    d["copy_config"] = settings.copy_config.to_dict()
    d["task_config"] = settings.task_config.to_dict()
    return d
