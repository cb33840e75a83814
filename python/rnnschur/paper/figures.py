"""The report's figures, drawn with matplotlib (imported inside the functions): the
copy-task ablation lattice (paper Figure 1) and the cross-task single-block ablations
(paper Figure 2)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..ablation import BLOCK_NAMES
from ..constructions import CONSTRUCTIONS
from . import values as pv
from .labels import BLOCK_TEX, CONSTRUCTION_LABELS, TASK_LABELS
from .tables import copy_accuracies, finite

__all__ = ["figure1", "figure2"]

#: Matplotlib settings of the figures, applied with ``rc_context`` (nothing global).
_STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _new_figure(**kw: Any) -> Any:
    # A bare Figure needs no pyplot state or GUI backend (safe inside notebooks).
    from matplotlib.figure import Figure

    return Figure(**kw)


def _figure1_legend() -> list[Any]:
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], ls="", marker="o", ms=5, color="C0", label="blocks on x removed"),
        Line2D(
            [], [], ls="", marker="s", ms=5, mfc="white", mec="C3",
            label="… and −" + BLOCK_TEX["CC"],
        ),
        Line2D([], [], ls=":", color="0.5", label="chance"),
        Line2D(
            [], [], ls="", marker="x", ms=5, color="black",
            label="paper (dense orth., 72)",
        ),
    ]  # fmt: skip


def figure1(
    copy_rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]
) -> Path | None:
    """Copy-task ablation lattice (the paper's Figure 1).

    One panel per construction at the largest width: mean replay accuracy of each
    subset of {T_RR, T_C→R} (x axis), without (filled circle) and with (open square)
    T_CC additionally removed, the two joined by a gray segment; a dotted line marks
    chance (0.5). With several seeds the points of each seed are drawn side by side.
    The paper's values for its dense orthogonal Nh = 72 model are black crosses.
    """
    if not copy_rows:
        return None
    import matplotlib as mpl

    width = max(r["hidden"] for r in copy_rows)
    lags = copy_rows[0].get("lags", 128)
    constructions = [
        c for c in CONSTRUCTIONS if any(r["construction"] == c for r in copy_rows)
    ]
    bases = [(), ("RR",), ("CR",), ("RR", "CR")]
    with mpl.rc_context(_STYLE):  # type: ignore[arg-type]  # keys typed as Literal
        fig = _new_figure(figsize=(1.75 * len(constructions) + 0.7, 3.0))
        axes = fig.subplots(1, len(constructions), sharey=True, squeeze=False)[0]
        lo = 1.0
        for ax, c in zip(axes, constructions, strict=True):
            by_seed = sorted(copy_accuracies(copy_rows, c, width).items())
            for k, (_key, accs) in enumerate(by_seed):
                off = 0.08 * (k - 0.5 * (len(by_seed) - 1))
                for i, base in enumerate(bases):
                    with_cc = tuple(b for b in BLOCK_NAMES if b in (*base, "CC"))
                    a0, a1 = accs[base]["accuracy"], accs[with_cc]["accuracy"]
                    lo = min(lo, a0, a1)
                    x0, x1 = i - 0.17 + off, i + 0.17 + off
                    ax.plot([x0, x1], [a0, a1], color="0.6", lw=1.2, zorder=1)
                    ax.scatter(x0, a0, s=20, color="C0", zorder=2)
                    ax.scatter(x1, a1, s=20, marker="s", fc="white", ec="C3", zorder=3)
            if c == "dense_orthogonal" and width == 72:
                paper = pv.COPY_DENSE_ORTHOGONAL_72
                for i, base in enumerate(bases):
                    with_cc = tuple(b for b in BLOCK_NAMES if b in (*base, "CC"))
                    ax.scatter(
                        [i - 0.17, i + 0.17],
                        [paper[base], paper[with_cc]],
                        marker="x",
                        s=16,
                        lw=1,
                        color="black",
                        zorder=4,
                    )
            ax.axhline(0.5, color="0.5", lw=0.8, ls=":", zorder=0)
            ax.set_xticks(range(len(bases)))
            ax.set_xticklabels(
                [
                    "none",
                    "−" + BLOCK_TEX["RR"],
                    "−" + BLOCK_TEX["CR"],
                    "−" + BLOCK_TEX["RR"] + "\n−" + BLOCK_TEX["CR"],
                ]
            )
            ax.set_xlim(-0.5, len(bases) - 0.5)
            ax.set_title(f"{CONSTRUCTION_LABELS[c]}, $N_h = {width}$")
            ax.grid(axis="y", color="0.9", lw=0.6)
            ax.set_axisbelow(True)
        axes[0].set_ylim(min(0.45, lo - 0.03), 1.02)
        axes[0].set_ylabel(f"mean replay accuracy\n({lags} lags, held out)")
        fig.legend(handles=_figure1_legend(), loc="lower center", ncol=4, frameon=False)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
        path = Path(path)
        fig.savefig(path, dpi=200)
    return path


def figure2(
    summary: Sequence[dict[str, Any]], path: str | os.PathLike[str]
) -> Path | None:
    """Single-block ablations across tasks (the paper's Figure 2).

    Top: ΔFVU; bottom: S_ΔT; bars are means over seeds with SEM error bars, per task
    and block; the paper's published means are black diamonds with their SEM. Both
    axes are symlog (linear within ±1e-3): the values span orders of magnitude and may
    be slightly negative.
    """
    if not summary:
        return None
    import matplotlib as mpl
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    tasks = [
        t for t in ("flipflop", "sine", "cdi") if any(r["task"] == t for r in summary)
    ]
    by = {(r["task"], r["block"]): r for r in summary}
    n_seeds = max(r["n_seeds"] for r in summary)
    bar_w = 0.26
    with mpl.rc_context(_STYLE):  # type: ignore[arg-type]  # keys typed as Literal
        fig = _new_figure(figsize=(5.4, 4.8))
        axes = fig.subplots(2, 1, sharex=True)
        for ax, metric, ylabel in (
            (axes[0], "delta_fvu", r"$\Delta$FVU"),
            (axes[1], "s_delta_t", "$S_{\\Delta T}$\n(ΔFVU per removed mass)"),
        ):
            top = 0.0
            for j, b in enumerate(BLOCK_NAMES):
                for i, t in enumerate(tasks):
                    r = by.get((t, b))
                    if r is None or not finite(r[f"{metric}_mean"]):
                        continue
                    x = i + (j - 1) * bar_w
                    mean, sem = r[f"{metric}_mean"], r[f"{metric}_sem"]
                    err = sem if finite(sem) else 0.0
                    ax.bar(
                        x, mean, bar_w, yerr=err, capsize=2, color=f"C{j}",
                        error_kw={"lw": 0.8},
                    )  # fmt: skip
                    top = max(top, mean + err)
                    p = pv.CROSS_TASK.get(t, {}).get(b, {}).get(metric)
                    if p is not None:
                        ax.errorbar(
                            x, p[0], yerr=p[1], fmt="D", ms=3.5, color="black",
                            capsize=1.5, lw=0.8, zorder=3,
                        )  # fmt: skip
                        top = max(top, p[0] + p[1])
            ax.set_yscale("symlog", linthresh=1e-3)
            ax.set_ylim(top=max(top, 1e-2) * 4)
            ax.axhline(0, color="0.3", lw=0.6)
            ax.set_ylabel(ylabel)
            ax.grid(axis="y", color="0.9", lw=0.6)
            ax.set_axisbelow(True)
        axes[1].set_xticks(range(len(tasks)))
        axes[1].set_xticklabels([TASK_LABELS[t] for t in tasks])
        handles: list[Any] = [
            Patch(color=f"C{j}", label="−" + BLOCK_TEX[b])
            for j, b in enumerate(BLOCK_NAMES)
        ]
        handles.append(
            Line2D([], [], ls="", marker="D", ms=4, color="black", label="paper")
        )
        fig.legend(handles=handles, loc="upper center", ncol=4, frameon=False)
        fig.text(
            0.99, 0.005, f"bars: mean ± SEM over {n_seeds} seeds", ha="right",
            va="bottom", fontsize=7, color="0.3",
        )  # fmt: skip
        fig.tight_layout(rect=(0, 0.02, 1, 0.94))
        path = Path(path)
        fig.savefig(path, dpi=200)
    return path
