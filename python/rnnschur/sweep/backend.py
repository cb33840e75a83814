"""The one place where the sweep imports the library.

Everything the sweep needs from :mod:`rnnschur` is imported (or wrapped) here, so the
library can be reorganised by editing this module only. :func:`ablation_records` is the
per-model diagnosis: switching the sweep to another diagnosis (e.g. a ``diagnose``
function returning ``to_records()``) means rewriting that one function.
"""

from __future__ import annotations

from typing import Any

from ..constructions import CONSTRUCTIONS
from ..metrics import s_delta_t
from ..paper.profile import ablation_profile
from ..tasks import TASKS, make_task, task_from_dict
from ..training import (
    TrainConfig,
    TrainedModel,
    TrainingDiverged,
    default_config,
    load,
    save,
    train,
)

__all__ = [
    "CONSTRUCTIONS",
    "TASKS",
    "TrainConfig",
    "TrainedModel",
    "TrainingDiverged",
    "ablation_records",
    "default_config",
    "load",
    "make_task",
    "save",
    "task_from_dict",
    "train",
]


def _label(subset: tuple[str, ...]) -> str:
    # The library's short labels (``Ablation.labels``): "none", "RR", "RR+CR", ...
    return "+".join(subset) if subset else "none"


def ablation_records(
    model: TrainedModel, *, alpha: float, eval_size: int, eval_seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The 8-subset ablation table of one trained model on a held-out batch.

    Parameters
    ----------
    model : TrainedModel
    alpha : float in (0, 1]
        Schur split threshold.
    eval_size, eval_seed : int
        Held-out batch ``task.sample(eval_size, default_rng(eval_seed), split="test")``.

    Returns
    -------
    records : list of dict
        One per subset: ``subset`` (``"none"``, ``"RR"``, ..., ``"RR+CR+CC"``),
        ``removed_mass``, ``metric`` (replay accuracy for the copy task, FVU
        otherwise), ``delta`` (metric minus the intact model's), ``delta_per_mass``
        (``delta / removed_mass``, NaN where nothing is removed), ``fvu`` and
        ``accuracy`` (None for tasks without one).
    summary : dict
        ``metric_name``, ``n_R``, ``spectral_radius``, ``schur_residual``.
    """
    prof = ablation_profile(
        model, alpha=alpha, eval_size=eval_size, eval_seed=eval_seed, n_threads=1
    )
    accuracy = prof.get("accuracy")
    name = "accuracy" if accuracy is not None else "fvu"
    metric = prof[name]
    full = metric[prof["subsets"].index(())]
    delta = [m - full for m in metric]
    per_mass = s_delta_t(delta, prof["removed_mass"])
    records = [
        {
            "subset": _label(s),
            "removed_mass": prof["removed_mass"][i],
            "metric": metric[i],
            "delta": delta[i],
            "delta_per_mass": float(per_mass[i]),
            "fvu": prof["fvu"][i],
            "accuracy": None if accuracy is None else accuracy[i],
        }
        for i, s in enumerate(prof["subsets"])
    ]
    summary = {
        "metric_name": name,
        "n_R": prof["n_R"],
        "spectral_radius": prof["spectral_radius"],
        "schur_residual": prof["schur_residual"],
    }
    return records, summary
