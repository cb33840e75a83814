"""`rnnschur reproduce` and `rnnschur ablate`: the library's main job, as functions.

:func:`reproduce` trains (or reuses) every network of the selected experiments in
``out/models/``, runs the experiments, and writes the report (:mod:`rnnschur.report`).
:func:`ablation_table` formats the 8-subset ablation of one checkpoint.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from . import __version__
from .experiments import (
    EXPERIMENTS,
    SUBSETS,
    RunSettings,
    ablation_profile,
    check_only,
    estimate_seconds,
    model_specs,
    run,
    subset_label,
)
from .report import write_report
from .tasks import make_task
from .train import load

__all__ = ["ablation_table", "parse_task", "reproduce"]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with Path("/proc/cpuinfo").open() as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()}"


def reproduce(
    out_dir: str | os.PathLike,
    *,
    quick: bool = False,
    only: Iterable[str] | None = None,
    jobs: int = 1,
    progress: bool = True,
    settings: RunSettings | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Run the paper's experiments end to end and write the report.

    Parameters
    ----------
    out_dir : path
        Output directory: ``report.md``, ``figure1.png``, ``figure2.png``,
        ``results.json``, CSV tables, and trained checkpoints in ``models/`` (reused on
        the next run with the same settings; an interrupted run resumes).
    quick : bool
        Reduced settings (:meth:`RunSettings.quick`), labelled as such in the report.
    only : iterable of {"copy", "alpha", "tasks"}, optional
        Run only these experiments (default: all three).
    jobs : int
        Models trained in parallel processes.
    progress : bool
        Progress bars for training and evaluation.
    settings : RunSettings, optional
        Overrides ``quick`` (used by tests with tiny settings).
    log : callable
        Receives status lines (the run-time estimate first).

    Returns
    -------
    Path of ``report.md``.
    """
    only = check_only(EXPERIMENTS if only is None else only)
    cores = os.cpu_count() or 1
    if jobs > cores:
        log(f"warning: --jobs {jobs} exceeds the {cores} cores of this machine")
    if settings is None:
        settings = RunSettings.quick() if quick else RunSettings.full()
    out = Path(out_dir)
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    specs = model_specs(settings, only)
    est = estimate_seconds(specs, models_dir)
    n_new = sum(not (models_dir / f"{s.key}.npz").exists() for s in specs)
    log(
        f"rnnschur reproduce ({settings.mode}): {len(specs)} models, {n_new} without a "
        "checkpoint; "
        f"estimated training time ≈ {_human(est / max(1, min(jobs, max(n_new, 1))) * 1.1)}"
        f" (+ evaluation)"
    )
    t0 = time.perf_counter()
    results = run(
        settings, models_dir, only=only, jobs=jobs, progress=progress, log=log
    )
    results["started"] = started
    results["machine"] = _machine()
    results["version"] = __version__
    path = write_report(results, out)
    log(f"report written to {path} in {_human(time.perf_counter() - t0)}")
    return path


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def parse_task(spec: str):
    """A task from ``NAME`` or ``NAME:key=value,...`` (e.g. ``copy:lags=256``).

    Values are read as int, then float, then kept as text.
    """
    name, _, rest = spec.partition(":")
    params = {}
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


def ablation_table(
    path: str | os.PathLike,
    *,
    alpha: float = 0.9,
    task: str | None = None,
    eval_size: int = 1024,
) -> str:
    """The 8-subset ablation table of one checkpoint, as text.

    Parameters
    ----------
    path : path to a checkpoint written by :func:`rnnschur.train.save`
    alpha : float in (0, 1]
        Split threshold.
    task : str, optional
        Evaluate on this task instead of the checkpoint's own: ``NAME`` (default
        parameters) or ``NAME:key=value,...``, e.g. ``copy:lags=256`` to score replay
        beyond the trained horizon. Its input and output widths must match the
        network's.
    eval_size : int
        Held-out sequences.
    """
    model = load(path)
    if task is not None:
        t = parse_task(task)
        if (t.n_inputs, t.n_outputs) != (model.W_xh.shape[1], model.W_hy.shape[0]):
            msg = (
                f"task {task!r} has {t.n_inputs} inputs / {t.n_outputs} outputs; the "
                f"model has {model.W_xh.shape[1]} / {model.W_hy.shape[0]}"
            )
            raise ValueError(msg)
        model = dataclasses.replace(model, task=t)
    prof = ablation_profile(model, alpha=alpha, subsets=SUBSETS, eval_size=eval_size)
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
            d = prof["fvu"][i] - prof["fvu"][0]
            mass = prof["removed_mass"][i]
            line += f" {d:>10.4f} " + (
                f"{d / mass:>10.4g}" if mass > 0 else f"{'–':>10}"
            )
        lines.append(line)
    return "\n".join(lines)
