"""The model cache of a reproduction: load every network a run needs from a model
directory, training (and saving) the missing ones, optionally in parallel processes."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from .._validation import is_integer
from ..training import CheckpointError, TrainedModel, load, save, train
from .parallel import run_in_processes
from .settings import ModelSpec

__all__ = ["checkpoint_path", "ensure_models", "train_and_save"]


def checkpoint_path(models_dir: str | os.PathLike[str], spec: ModelSpec) -> Path:
    """Where the checkpoint of ``spec`` lives in ``models_dir``."""
    return Path(models_dir) / f"{spec.key}.npz"


def train_and_save(
    spec: ModelSpec, path: str, n_threads: int | None, progress: bool
) -> str:
    """Train the network of ``spec`` (with ``n_threads`` core threads) and save it to
    ``path``; returns ``path``."""
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


def _train_in_worker(args: tuple[ModelSpec, str, int | None, bool]) -> str:
    return train_and_save(*args)


def _load_existing(
    paths: dict[ModelSpec, Path], say: Callable[[str], None]
) -> dict[ModelSpec, TrainedModel]:
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
    models_dir: str | os.PathLike[str],
    *,
    jobs: int = 1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[ModelSpec, TrainedModel]:
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
    dict mapping each spec to its :class:`~rnnschur.training.TrainedModel`.
    """
    if not is_integer(jobs) or jobs < 1:
        msg = f"jobs must be a positive integer; got {jobs!r}"
        raise ValueError(msg)
    jobs = int(jobs)
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _line: None)
    specs = list(dict.fromkeys(specs))
    paths = {spec: checkpoint_path(models_dir, spec) for spec in specs}
    models = _load_existing(paths, say)
    missing = [s for s in specs if s not in models]
    if missing:
        say(f"training {len(missing)} model(s), {len(models)} reused")
    if jobs == 1 or len(missing) <= 1:
        for spec in missing:
            train_and_save(spec, str(paths[spec]), None, progress)
            say(f"trained {paths[spec].name}")
    else:
        n_threads = max(1, (os.cpu_count() or 1) // jobs)
        run_in_processes(
            _train_in_worker,
            [(s, str(paths[s]), n_threads, False) for s in missing],
            jobs,
            lambda path: say(f"trained {Path(path).name}"),
            progress_desc=f"models ({jobs} processes)" if progress else None,
        )
    for spec in missing:
        models[spec] = load(paths[spec])
    return {spec: models[spec] for spec in specs}
