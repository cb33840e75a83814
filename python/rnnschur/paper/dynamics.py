"""Why can a coupling be removed? The per-model measurements of the report's dynamics
section: subspace measures of each Schur coupling block on the model's held-out
hidden states (:func:`rnnschur.subspace_alignment`), and the fixed points of the
trained network with their fate under every ablation
(:func:`rnnschur.fixed_points`, :func:`rnnschur.continue_fixed_points`).

The statistics across models (which quantity predicts the ablation effect) are in
:mod:`rnnschur.paper.dynamics_claims`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..ablation import DEFAULT_SUBSETS
from ..alignment import SubspaceAlignment, subspace_alignment
from ..dynamics import FixedPoints, fixed_points
from ..dynamics_ablation import FixedPointContinuation, continue_fixed_points
from ..rnn import rollout
from ..training import TrainedModel, heldout_batch
from .labels import subset_label
from .settings import REPORT_EVAL_SEED, ModelSpec, RunSettings

__all__ = [
    "FIXED_POINT_TASKS",
    "Float64Net",
    "continuation_rows",
    "continuation_summary",
    "dynamics_experiment",
    "fixed_point_rows",
    "hidden_states",
    "model_fixed_points",
    "model_subspaces",
    "point_records",
    "subspace_rows",
]

#: Tasks whose networks get a fixed-point analysis. The copy task is left out: its
#: networks are near-orthogonal by design (every Schur coupling is small), so their
#: constant-input dynamics have no task structure to speak of, and the replay is a
#: transient, not an attractor.
FIXED_POINT_TASKS = ("flipflop", "sine", "cdi")

#: Sequences of the held-out batch whose hidden states the subspace measures use.
SUBSPACE_SEQUENCES = 256


def hidden_states(
    model: TrainedModel,
    *,
    n_sequences: int = SUBSPACE_SEQUENCES,
    seed: int = REPORT_EVAL_SEED,
    W_hh: np.ndarray | None = None,
) -> np.ndarray:
    """Held-out hidden states ``h_1 .. h_T`` of ``model`` (float64, (T, B, Nh)).

    The batch is the report's held-out set (``split="test"``, ``seed``); ``W_hh``
    replaces the recurrent weights (an ablated network).
    """
    x, _, _ = heldout_batch(model.task, n_sequences, seed, dtype=np.float64)
    W = np.asarray(model.W_hh if W_hh is None else W_hh, dtype=np.float64)
    _, hid = rollout(
        np.asarray(model.W_xh, np.float64),
        W,
        np.asarray(model.W_hy, np.float64),
        x,
        return_hidden=True,
    )
    return np.asarray(hid)


def model_subspaces(
    model: TrainedModel, *, alpha: float, n_null: int, seed: int = 0
) -> SubspaceAlignment:
    """:func:`rnnschur.subspace_alignment` of ``model`` on its held-out hidden states,
    with its readout and input weights as reference subspaces."""
    H = hidden_states(model)
    return subspace_alignment(
        np.asarray(model.W_hh, np.float64),
        H,
        W_hy=np.asarray(model.W_hy, np.float64),
        W_xh=np.asarray(model.W_xh, np.float64),
        alpha=alpha,
        n_null=n_null,
        rng=seed,
    )


def model_fixed_points(
    model: TrainedModel,
    *,
    alpha: float,
    n_starts: int,
    seed: int = 0,
    subsets: Iterable[tuple[str, ...]] = DEFAULT_SUBSETS,
    fresh_search: bool = True,
) -> tuple[FixedPoints, FixedPointContinuation]:
    """Fixed points of ``model`` at zero input (float64 weights) and their continuation
    into every Schur-ablated network of ``subsets``."""
    net = Float64Net(model)
    fp = fixed_points(net, n_starts=n_starts, rng=seed)
    cont = continue_fixed_points(
        net,
        fp,
        alpha=alpha,
        subsets=list(subsets),
        fresh_search=fresh_search,
        n_starts=n_starts,
        rng=seed + 1,
    )
    return fp, cont


class Float64Net:
    """A trained model's weights in float64 (the search runs in float64; a float32
    ``W_hh`` is taken as exact), with its task for the default starting states."""

    def __init__(self, model: TrainedModel) -> None:
        self.W_xh = np.asarray(model.W_xh, np.float64)
        self.W_hh = np.asarray(model.W_hh, np.float64)
        self.W_hy = np.asarray(model.W_hy, np.float64)
        self.task = model.task


def _model_fields(spec: ModelSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "task": spec.task,
        "construction": spec.construction,
        "hidden": spec.hidden,
        "seed": spec.seed,
    }


def subspace_rows(spec: ModelSpec, sa: SubspaceAlignment) -> list[dict[str, Any]]:
    """One flat row per block: the model, then :meth:`SubspaceAlignment.to_records`."""
    pcs = {f"k_{k}": v for k, v in sa.pc_dims.items()}
    return [{**_model_fields(spec), **pcs, **r} for r in sa.to_records()]


def point_records(fp: FixedPoints, W_hy: np.ndarray) -> list[dict[str, Any]]:
    """One record per distinct fixed or slow point: status, q, stability, unstable
    modes, largest |eigenvalue|, starts that reached it, and the readout ``W_hy h``
    (a list of floats)."""
    return [
        {
            "point": p,
            "status": str(fp.status[p]),
            "q": float(fp.q[p]),
            "stable": bool(fp.stable[p]),
            "n_unstable": int(fp.n_unstable[p]),
            "max_abs_eig": float(np.abs(fp.eigenvalues[p, 0])),
            "starts": int(fp.count[p]),
            "readout": [float(v) for v in W_hy @ fp.h[p]],
        }
        for p in range(fp.h.shape[0])
    ]


def fixed_point_rows(
    spec: ModelSpec, fp: FixedPoints, model: TrainedModel
) -> list[dict[str, Any]]:
    """:func:`point_records` of one model as flat CSV rows (the readout as text)."""
    W_hy = np.asarray(model.W_hy, np.float64)
    return [
        {
            **_model_fields(spec),
            **r,
            "readout": " ".join(f"{v:+.2f}" for v in r["readout"]),
        }
        for r in point_records(fp, W_hy)
    ]


def continuation_rows(
    spec: ModelSpec, cont: FixedPointContinuation
) -> list[dict[str, Any]]:
    """:func:`continuation_summary` rows, each led by the model's fields."""
    return [{**_model_fields(spec), **r} for r in continuation_summary(cont)]


def continuation_summary(cont: FixedPointContinuation) -> list[dict[str, Any]]:
    """One row per ablation subset: how many intact fixed points (stable ones and
    saddles) survived, vanished or changed stability, and how many new points a
    fresh search found."""
    rows = []
    stable = cont.stable_before
    for k, label in enumerate(cont.subsets):
        surv = cont.survived[k]
        disp = cont.displacement[k][surv]
        fresh = cont.fresh[k] if cont.fresh is not None else None
        rows.append(
            {
                "subset": subset_label(() if label == "none" else label.split("+")),
                "removed": "" if label == "none" else label,
                "removed_mass": float(cont.removed_mass[k]),
                "n_points": int(surv.size),
                "n_stable": int(stable.sum()),
                "stable_vanished": int((stable & ~surv).sum()),
                "stable_changed": int((stable & cont.changed_stability[k]).sum()),
                "saddles_vanished": int((~stable & ~surv).sum()),
                "saddles_changed": int((~stable & cont.changed_stability[k]).sum()),
                "max_displacement": float(disp.max()) if disp.size else None,
                "new_points": int(cont.new[k].size),
                "fresh_fixed": None if fresh is None else fresh.n_fixed,
                "fresh_stable": None if fresh is None else fresh.n_stable,
            }
        )
    return rows


def dynamics_experiment(
    models: dict[ModelSpec, TrainedModel],
    settings: RunSettings,
    *,
    tick: Callable[[], Any] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Subspace measures of every model of the run, fixed points of the task models.

    Returns ``"subspaces"`` (one row per model and block), ``"fixed_points"`` (one
    row per point) and ``"continuation"`` (one row per model and ablation subset).
    """
    out: dict[str, list[dict[str, Any]]] = {
        "subspaces": [],
        "fixed_points": [],
        "continuation": [],
    }
    for spec, model in models.items():
        sa = model_subspaces(model, alpha=settings.alpha, n_null=settings.subspace_null)
        out["subspaces"] += subspace_rows(spec, sa)
        if spec.task in FIXED_POINT_TASKS:
            fp, cont = model_fixed_points(
                model, alpha=settings.alpha, n_starts=settings.fp_starts
            )
            out["fixed_points"] += fixed_point_rows(spec, fp, model)
            out["continuation"] += continuation_rows(spec, cont)
        if tick is not None:
            tick()
    return out
