"""Distribution figures of the robustness study: one strip plot per task and metric,
a panel per condition, every trained model a point (jittered), its mean a bar."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .study import condition_parts, conditions

__all__ = ["STUDY_FIGURES", "panel_titles", "study_figures"]

#: (task kind, metric key, subsets shown, y label, symlog y axis, chance line).
STUDY_FIGURES: tuple[tuple[str, str, tuple[str, ...], str, bool, float | None], ...] = (
    ("neuro", "delta", ("RR", "CR", "CC"), "ΔFVU", True, None),
    (
        "neuro",
        "delta_per_mass",
        ("RR", "CR", "CC"),
        "S_ΔT = ΔFVU / removed mass",
        True,
        None,
    ),
    (
        "copy",
        "accuracy",
        ("none", "RR", "CR", "CC", "RR+CR", "RR+CC", "CR+CC", "RR+CR+CC"),
        "replay accuracy",
        False,
        0.5,
    ),
)

_NAMES = {"none": "full", "RR": "RR", "CR": "C→R", "CC": "CC"}


def _subset_name(s: str) -> str:
    return "−" + "−".join(_NAMES[b] for b in s.split("+")) if s != "none" else "full"


def _panel(
    ax: Any,
    ms: Sequence[dict[str, Any]],
    metric: str,
    subsets: Sequence[str],
    rng: np.random.Generator,
) -> None:
    for i, s in enumerate(subsets):
        v = np.array([m[metric].get(s, np.nan) for m in ms], dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        x = i + rng.uniform(-0.18, 0.18, size=v.size)
        ax.plot(x, v, "o", ms=3, alpha=0.6, color=f"C{i % 10}")
        ax.hlines(v.mean(), i - 0.3, i + 0.3, color="k", lw=1.2)
    ax.set_xticks(range(len(subsets)))
    ax.set_xticklabels([_subset_name(s) for s in subsets], rotation=45, fontsize=7)


def panel_titles(
    conds: Sequence[tuple[Any, ...]], width: int = 40
) -> tuple[str, list[str]]:
    """Figure title and panel titles of a figure with a panel per condition.

    Parameters
    ----------
    conds : sequence of conditions (:func:`rnnschur.paper.study.conditions`)
    width : int
        Line width (characters) at which panel titles wrap.

    Returns
    -------
    (shared, titles)
        ``shared``: the label parts every panel has, joined with ``" · "`` (the
        figure's title). ``titles``: per condition, its other parts, wrapped; a
        panel with no other part (every parameter at the task's default) reads
        ``"defaults"`` when there are other panels, else ``""``.
    """
    parts = [condition_parts(c) for c in conds]
    shared = [p for p in parts[0] if all(p in q for q in parts[1:])] if parts else []
    empty = "defaults" if len(parts) > 1 else ""
    titles = [
        "\n".join(textwrap.wrap(" · ".join(p for p in q if p not in shared), width))
        or empty
        for q in parts
    ]
    return " · ".join(shared), titles


def _one_figure(
    models: Sequence[dict[str, Any]],
    task: str,
    spec: tuple[str, str, tuple[str, ...], str, bool, float | None],
    path: Path,
) -> Path | None:
    # A bare Figure needs no pyplot state and leaves the user's backend alone.
    from matplotlib.figure import Figure

    _, metric, subsets, ylabel, symlog, chance = spec
    conds = [c for c in conditions(models) if dict(c)["task"] == task]
    ok = [m for m in models if m["status"] == "ok" and m["task"] == task]
    if not conds or not ok:
        return None
    ncol = min(4, len(conds))
    nrow = -(-len(conds) // ncol)
    shared, titles = panel_titles(conds)
    fig = Figure(figsize=(3.2 * ncol, 2.9 * nrow + 0.3))
    axes = fig.subplots(nrow, ncol, squeeze=False, sharey=True)
    # Fixed jitter seed: the same table always draws the same figure.
    rng = np.random.default_rng(0)
    for ax, cond, title in zip(axes.flat, conds, titles, strict=False):
        _panel(ax, [m for m in ok if m["condition"] == cond], metric, subsets, rng)
        ax.set_title(title, fontsize=7)
        if chance is not None:
            ax.axhline(chance, color="grey", ls=":", lw=1)
        if symlog:
            ax.set_yscale("symlog", linthresh=1e-3)
    for ax in axes.flat[len(conds) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    fig.suptitle(shared, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def study_figures(models: Sequence[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write ``study_TASK_METRIC.png`` for every task present; returns the paths.

    Parameters
    ----------
    models : records from :func:`rnnschur.paper.study.load_models`
    out_dir : existing directory
    """
    written = []
    tasks = sorted({m["task"] for m in models})
    for spec in STUDY_FIGURES:
        for task in tasks:
            if (task == "copy") != (spec[0] == "copy"):
                continue
            p = _one_figure(models, task, spec, out_dir / f"study_{task}_{spec[1]}.png")
            if p is not None:
                written.append(p)
    return written
