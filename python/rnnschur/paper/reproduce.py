"""``rnnschur reproduce`` as a function: train (or reuse) every network of the selected
experiments in ``out/models/``, run the experiments, and write the report."""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .._version import library_version
from .estimate import ESTIMATE_MARGIN, estimate_seconds, human_duration
from .experiments import run
from .models import checkpoint_path
from .report import write_report
from .settings import EXPERIMENTS, RunSettings, check_only, model_specs

__all__ = ["reproduce"]


def _machine() -> str:
    """CPU model, logical cores and OS of this machine."""
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
    out_dir: str | os.PathLike[str],
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
    n_new = sum(not checkpoint_path(models_dir, s).exists() for s in specs)
    log(
        f"rnnschur reproduce ({settings.mode}): {len(specs)} models, {n_new} without a "
        "checkpoint; "
        "estimated training time ≈ "
        f"{human_duration(est / max(1, min(jobs, max(n_new, 1))) * ESTIMATE_MARGIN)}"
        f" (+ evaluation)"
    )
    t0 = time.perf_counter()
    results = run(
        settings, models_dir, only=only, jobs=jobs, progress=progress, log=log
    )
    results["started"] = started
    results["machine"] = _machine()
    results["version"] = library_version()
    path = write_report(results, out)
    log(f"report written to {path} in {human_duration(time.perf_counter() - t0)}")
    return path
