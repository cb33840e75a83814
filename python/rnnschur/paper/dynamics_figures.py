"""Figures of the dynamics section (matplotlib imported inside the functions):

* :func:`trajectory_figure`: held-out hidden-state trajectories in the plane of the
  intact network's top two principal components, with the fixed points (stable
  filled, saddles open) and their unstable modes as short segments, intact vs
  ablated; the data come from :func:`trajectory_panels`;
* :func:`predictor_figure`: the ablation effect against each predictor.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..ablation import ablate
from ..dynamics import fixed_points
from ..schur import ordered_schur, schur_split
from ..training import TrainedModel
from .dynamics import hidden_states
from .dynamics_claims import ACCOUNTS
from .figures import _STYLE, _new_figure
from .labels import BLOCK_TEX, TASK_LABELS, subset_label

__all__ = ["predictor_figure", "trajectory_figure", "trajectory_panels"]

#: Panels of the trajectory figure: intact, −T_C→R, −T_CC.
TRAJECTORY_SUBSETS: tuple[tuple[str, ...], ...] = ((), ("CR",), ("CC",))


class _Net:
    def __init__(self, model: TrainedModel, W_hh: np.ndarray) -> None:
        self.W_xh = np.asarray(model.W_xh, np.float64)
        self.W_hh = W_hh
        self.task = model.task


def _modes(fp: Any, U: np.ndarray, scale: float) -> list[np.ndarray]:
    """Segments (2, 2) in PC coordinates along each unstable right eigenvector."""
    segs = []
    assert fp.right_eigenvectors is not None
    for p in np.flatnonzero(fp.is_fixed & ~fp.stable):
        for k in np.flatnonzero(np.abs(fp.eigenvalues[p]) > 1.0):
            v = np.real(fp.right_eigenvectors[p][:, k])
            v = v / max(float(np.linalg.norm(v)), 1e-300)
            ends = np.stack([fp.h[p] - scale * v, fp.h[p] + scale * v])
            segs.append(ends @ U)
    return segs


def trajectory_panels(
    model: TrainedModel,
    *,
    alpha: float,
    subsets: Sequence[tuple[str, ...]] = TRAJECTORY_SUBSETS,
    n_starts: int = 256,
    n_trajectories: int = 6,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Data of one row of :func:`trajectory_figure`, one panel per subset.

    The PC plane comes from the intact network's held-out hidden states; every
    panel (ablated networks included) is projected onto it. Each panel: ``title``,
    ``traj`` (n, T, 2), ``stable`` (k, 2), ``saddle`` (m, 2), ``modes`` (list of
    (2, 2) segments), ``intact_stable`` (the intact stable points, for reference),
    ``var`` (variance fraction of the two PCs).
    """
    H = hidden_states(model, n_sequences=max(n_trajectories, 64), seed=seed + 1)
    X = H.reshape(-1, H.shape[-1])
    mu = X.mean(axis=0)
    _, s, Vt = np.linalg.svd(X - mu, full_matrices=False)
    U = Vt[:2].T
    var = s[:2] ** 2 / np.sum(s**2)
    W = np.asarray(model.W_hh, np.float64)
    form = ordered_schur(W)
    abl = ablate(form, schur_split(form, alpha, sep_method="none"), list(subsets))
    span = float(np.ptp((X - mu) @ U, axis=0).max())
    panels = []
    intact_stable = np.zeros((0, 2))
    for k, sub in enumerate(subsets):
        Wk = W if not sub else np.asarray(abl.W[k])
        Hk = (
            H
            if not sub
            else hidden_states(model, n_sequences=H.shape[1], seed=seed + 1, W_hh=Wk)
        )
        fp = fixed_points(
            _Net(model, Wk), n_starts=n_starts, rng=seed, eigenvectors=True
        )
        pts = (fp.h - mu) @ U
        fixed = fp.is_fixed
        if not sub:
            intact_stable = pts[fixed & fp.stable]
        panels.append(
            {
                "title": "intact" if not sub else subset_label(sub),
                "subset": sub,
                "traj": (Hk[:, :n_trajectories] - mu) @ U,
                "stable": pts[fixed & fp.stable],
                "saddle": pts[fixed & ~fp.stable],
                "modes": [m - mu @ U for m in _modes(fp, U, 0.08 * span)],
                "intact_stable": intact_stable,
                "var": var,
            }
        )
    return panels


def _draw_panel(ax: Any, panel: dict[str, Any], first: bool) -> None:
    traj = np.asarray(panel["traj"])
    for i in range(traj.shape[1]):
        ax.plot(traj[:, i, 0], traj[:, i, 1], lw=0.6, color=f"C{i % 10}", alpha=0.55)
    if not first and len(panel["intact_stable"]):
        ref = np.asarray(panel["intact_stable"])
        ax.scatter(
            ref[:, 0], ref[:, 1], marker="x", s=22, lw=0.8, color="0.55", zorder=3
        )
    for seg in panel["modes"]:
        ax.plot(seg[:, 0], seg[:, 1], color="C3", lw=1.1, zorder=4)
    st, sd = np.asarray(panel["stable"]), np.asarray(panel["saddle"])
    if len(st):
        ax.scatter(st[:, 0], st[:, 1], s=28, color="black", zorder=5)
    if len(sd):
        ax.scatter(sd[:, 0], sd[:, 1], s=28, fc="white", ec="C3", lw=1.1, zorder=6)
    saddles = f"{len(sd)} saddle" + "s" * (len(sd) != 1)
    ax.set_title(f"{panel['title']}: {len(st)} stable, {saddles}")


def trajectory_figure(
    rows: Sequence[tuple[str, Sequence[dict[str, Any]]]], path: str | os.PathLike[str]
) -> Path | None:
    """Hidden-state trajectories with fixed points, intact vs ablated.

    ``rows``: (row label, panels from :func:`trajectory_panels`) per network. Stable
    points are black dots, saddles open red circles with their unstable modes as red
    segments; in ablated panels the intact network's stable points are gray crosses.
    """
    if not rows:
        return None
    import matplotlib as mpl
    from matplotlib.lines import Line2D

    ncol = max(len(p) for _, p in rows)
    with mpl.rc_context(_STYLE):  # type: ignore[arg-type]  # keys typed as Literal
        fig = _new_figure(figsize=(3.0 * ncol, 2.8 * len(rows) + 0.5))
        axes = fig.subplots(len(rows), ncol, squeeze=False)
        for r, (label, panels) in enumerate(rows):
            for ax in axes[r, 1:]:  # one scale per network: panels compare directly
                ax.sharex(axes[r, 0])
                ax.sharey(axes[r, 0])
            for c, panel in enumerate(panels):
                ax = axes[r, c]
                _draw_panel(ax, panel, c == 0)
                v = panel["var"]
                ax.set_xlabel(f"PC1 ({v[0] * 100:.0f} %)")
                if c == 0:
                    ax.set_ylabel(f"{label}\nPC2 ({v[1] * 100:.0f} %)")
            for c in range(len(panels), ncol):
                axes[r, c].set_visible(False)
        handles = [
            Line2D(
                [], [], ls="", marker="o", color="black", label="stable fixed point"
            ),
            Line2D([], [], ls="", marker="o", mfc="white", mec="C3", label="saddle"),
            Line2D([], [], color="C3", label="unstable mode"),
            Line2D(
                [], [], ls="", marker="x", color="0.55", label="intact stable point"
            ),
            Line2D([], [], color="0.4", lw=0.6, label="held-out trajectory"),
        ]
        fig.legend(handles=handles, loc="lower center", ncol=5, frameon=False)
        fig.tight_layout(rect=(0, 0.06 / len(rows) ** 0.5, 1, 1))
        path = Path(path)
        fig.savefig(path, dpi=150)
    return path


_LOG = {"removed_mass", "activity_weighted_size", "readout_weighted_size"}
_MARKERS = {"flipflop": "o", "sine": "s", "cdi": "^", "copy": "D"}


def predictor_figure(
    predictors: dict[str, dict[str, Any]], path: str | os.PathLike[str]
) -> Path | None:
    """Ablation effect against each predictor, one row per analysis.

    Colour: block; marker: task. Sizes are on log axes, alignments and overlaps
    (in [0, 1]) on linear ones; the effect axis is symlog (linear within ±1e-3).
    Excluded observations (rounding-level blocks) are not drawn. Panel titles give
    Spearman's ρ with its bootstrap interval.
    """
    analyses = [(k, v) for k, v in predictors.items() if v.get("observations")]
    if not analyses:
        return None
    import matplotlib as mpl
    from matplotlib.ticker import NullFormatter

    names = [p for m in ACCOUNTS.values() for p in m]
    with mpl.rc_context(_STYLE):  # type: ignore[arg-type]  # keys typed as Literal
        fig = _new_figure(figsize=(2.2 * len(names), 2.4 * len(analyses) + 0.4))
        axes = fig.subplots(len(analyses), len(names), squeeze=False)
        for r, (_, res) in enumerate(analyses):
            obs = [o for o in res["observations"] if o["excluded"] is None]
            corr = {c["predictor"]: c for c in res.get("correlations", [])}
            for c, name in enumerate(names):
                ax = axes[r, c]
                for j, b in enumerate(("RR", "CR", "CC")):
                    for task, mk in _MARKERS.items():
                        sel = [o for o in obs if o["block"] == b and o["task"] == task]
                        if sel:
                            ax.scatter(
                                [o[name] for o in sel], [o["effect"] for o in sel],
                                s=14, marker=mk, color=f"C{j}", alpha=0.8,
                            )  # fmt: skip
                if name in _LOG and any(o[name] > 0 for o in obs):
                    ax.set_xscale("log")
                    ax.xaxis.set_minor_formatter(NullFormatter())
                ax.set_yscale("symlog", linthresh=1e-3)
                low = min((o["effect"] for o in obs), default=0.0)
                ax.set_ylim(bottom=min(-5e-4, 1.5 * low))
                ax.set_xlabel(name.replace("_", " "))
                cr = corr.get(name)
                if cr is not None and cr["spearman_rho"] is not None:
                    ax.set_title(
                        f"ρ = {cr['spearman_rho']:.2f} "
                        f"[{cr['ci_low']:.2f}, {cr['ci_high']:.2f}]"
                    )
                elif corr:
                    ax.set_title("constant: left out")
                if c == 0:
                    ax.set_ylabel(res["effect"])
        _predictor_legend(fig)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        path = Path(path)
        fig.savefig(path, dpi=130)
    return path


def _predictor_legend(fig: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls="", marker="o", color=f"C{j}", label="−" + BLOCK_TEX[b])
        for j, b in enumerate(("RR", "CR", "CC"))
    ]
    handles += [
        Line2D([], [], ls="", marker=mk, color="0.4", label=TASK_LABELS.get(t, t))
        for t, mk in _MARKERS.items()
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
