"""The reproduction report: markdown tables beside the paper's values, a verdict for
each of the paper's qualitative claims, two figures, and machine-readable results.

:func:`write_report` takes the dict returned by :func:`rnnschur.experiments.run` and
writes into one directory:

* ``report.md``: run settings, every table next to the published numbers
  (:mod:`rnnschur.paper_values`), and the claim checks (:func:`check_claims`);
* ``figure1.png``: the copy-task ablation lattice (paper Figure 1);
* ``figure2.png``: ΔFVU and S_ΔT per task and block, mean ± SEM (paper Figure 2);
* ``results.json`` and one CSV per table.

The claim checks use fixed, stated criteria (see :data:`CRITERIA`); they are never
tuned to the outcome of a run.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import paper_values as pv
from .experiments import BLOCKS, CONSTRUCTIONS, SUBSETS, subset_label

__all__ = ["CRITERIA", "check_claims", "figure1", "figure2", "write_report"]

#: Tolerances behind the verdicts, shown in the report.
CRITERIA = {
    "near": 0.02,  # accuracy change that still counts as "nearly loss-preserving"
    "drop": 0.05,  # accuracy loss that counts as "not loss-preserving"
    "negligible_mass": 0.05,  # relative Schur mass counted as negligible
    "rr_small": 0.1,  # ΔFVU(T_RR) below this fraction of the largest ΔFVU = "little"
    "fvu_max": {"flipflop": 0.01, "sine": 0.01, "cdi": 0.02},
    # Preconditions: an ablation claim about a network that never learned its task
    # says nothing, so it is reported "inconclusive" instead of judged.
    "solved_accuracy": 0.99,  # copy task: full-model replay accuracy
    "learned_fvu": 0.1,  # neuroscience-style tasks: mean full-model FVU
}

_BLOCK_LABEL = {"RR": "T_RR", "CR": "T_C→R", "CC": "T_CC"}
_CONSTRUCTION_LABEL = {
    "dense_default": "dense default",
    "dense_orthogonal": "dense orth.",
    "dense_normal": "dense normal",
    "cayley": "Cayley",
}
_TASK_LABEL = {"flipflop": "3-bit flip-flop", "sine": "sine generation", "cdi": "CDI"}


# --------------------------------------------------------------------------- formatting


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return format(v, spec)
    return str(v)


def _sci(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.3g}"


def _pm(mean: Any, sem: Any) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if sem is None or (isinstance(sem, float) and math.isnan(sem)):
        return _sci(mean)
    return f"{_sci(mean)} ± {_sci(sem)}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


# --------------------------------------------------------------------------- claims


def _copy_acc(rows, construction, hidden=None) -> dict[tuple[int, int], dict]:
    """{(hidden, seed): {removed-tuple: accuracy}} for one construction."""
    out: dict[tuple[int, int], dict] = {}
    for r in rows:
        if r["construction"] != construction:
            continue
        if hidden is not None and r["hidden"] != hidden:
            continue
        key = tuple(r["removed"].split("+")) if r["removed"] else ()
        out.setdefault((r["hidden"], r["seed"]), {})[key] = r
    return out


def _claim(cid: str, verdict: str, evidence: str) -> dict[str, str]:
    return {
        "id": cid,
        "claim": pv.CLAIMS[cid],
        "verdict": verdict,
        "evidence": evidence,
    }


def check_claims(results: dict[str, Any]) -> list[dict[str, str]]:
    """A verdict per paper claim, with the numbers that decided it.

    Verdicts: ``"supported"``, ``"not supported"``, ``"inconclusive"`` (the full network
    did not learn its task, so its ablations cannot speak to the claim) or
    ``"not tested"`` (the experiment did not run). Criteria: :data:`CRITERIA`.
    """
    near, drop = CRITERIA["near"], CRITERIA["drop"]
    out = []
    copy_rows = results.get("copy") or []
    width = max((r["hidden"] for r in copy_rows), default=None)
    orth = _copy_acc(copy_rows, "dense_orthogonal", width)
    cay = _copy_acc(copy_rows, "cayley", width)

    unsolved = {
        c: [
            f"seed {seed}: full-model accuracy {accs[()]['accuracy']:.3f}"
            for (_n, seed), accs in sorted(by.items())
            if accs[()]["accuracy"] < CRITERIA["solved_accuracy"]
        ]
        for c, by in (("dense_orthogonal", orth), ("cayley", cay))
    }

    def inconclusive(cid, construction):
        why = "; ".join(unsolved[construction])
        return _claim(
            cid,
            "inconclusive",
            f"Nh = {width}: the {_CONSTRUCTION_LABEL[construction]} network does not "
            f"solve the task ({why} < {CRITERIA['solved_accuracy']})",
        )

    if orth and unsolved["dense_orthogonal"]:
        out.append(inconclusive("copy_orth_cc_preserving", "dense_orthogonal"))
        out.append(inconclusive("copy_orth_cr_not", "dense_orthogonal"))
    elif orth:
        ok_all, ev = True, []
        for (_n, seed), accs in sorted(orth.items()):
            diffs = []
            for base in [(), ("RR",), ("CR",), ("RR", "CR")]:
                with_cc = tuple(b for b in BLOCKS if b in (*base, "CC"))
                if base in accs and with_cc in accs:
                    diffs.append(
                        abs(accs[with_cc]["accuracy"] - accs[base]["accuracy"])
                    )
            worst = max(diffs) if diffs else math.nan
            ok = bool(diffs) and worst <= near
            ok_all &= ok
            ev.append(
                f"Nh = {width}, seed {seed}: full {accs[()]['accuracy']:.3f}, −T_CC "
                f"{accs[('CC',)]['accuracy']:.3f}; largest change from additionally "
                f"removing T_CC over the 4 pairs {worst:.3f} (criterion ≤ {near})"
            )
        out.append(_claim("copy_orth_cc_preserving", _verdict(ok_all), "; ".join(ev)))
        ok_all, ev = True, []
        for (_n, seed), accs in sorted(orth.items()):
            loss = accs[()]["accuracy"] - accs[("CR",)]["accuracy"]
            ok_all &= loss >= drop
            ev.append(
                f"Nh = {width}, seed {seed}: full {accs[()]['accuracy']:.3f} → −T_C→R "
                f"{accs[('CR',)]['accuracy']:.3f} (loss {loss:.3f}; criterion ≥ {drop})"
            )
        out.append(_claim("copy_orth_cr_not", _verdict(ok_all), "; ".join(ev)))
    else:
        out.append(_claim("copy_orth_cc_preserving", "not tested", "no copy run"))
        out.append(_claim("copy_orth_cr_not", "not tested", "no copy run"))

    if cay and unsolved["cayley"]:
        out.append(inconclusive("copy_cayley_negligible", "cayley"))
    elif cay:
        ok_all, ev = True, []
        for (_n, seed), accs in sorted(cay.items()):
            full = accs[()]["accuracy"]
            worst = max(full - r["accuracy"] for r in accs.values())
            comp = accs.get(("CR", "CC"))
            comp_mass = comp["removed_mass"] if comp else math.nan
            ok = worst <= near and comp_mass <= CRITERIA["negligible_mass"]
            ok_all &= ok
            ev.append(
                f"Nh = {width}, seed {seed}: relative Schur mass of T_C→R + T_CC {comp_mass:.3g} "
                f"(criterion ≤ {CRITERIA['negligible_mass']}); largest accuracy loss over "
                f"the 8 subsets {worst:.3f} (criterion ≤ {near})"
            )
        out.append(_claim("copy_cayley_negligible", _verdict(ok_all), "; ".join(ev)))
    else:
        out.append(_claim("copy_cayley_negligible", "not tested", "no copy run"))

    alpha_rows = results.get("alpha") or []
    if alpha_rows:
        ev, ok_all = [], True
        for c in sorted({r["construction"] for r in alpha_rows}):
            for seed in sorted(
                {r["seed"] for r in alpha_rows if r["construction"] == c}
            ):
                sel = [
                    r
                    for r in alpha_rows
                    if r["construction"] == c and r["seed"] == seed
                ]
                profiles = {
                    (
                        abs(r["-CC"] - r["full"]) <= near,
                        r["full"] - r["-CR"] >= drop,
                    )
                    for r in sel
                }
                ok_all &= len(profiles) == 1
                ev.append(
                    f"{_CONSTRUCTION_LABEL[c]} seed {seed}: "
                    + ", ".join(
                        f"α={r['alpha']:.2f}: n_R={r['n_R']}, −T_C→R {r['-CR']:.3f}"
                        for r in sorted(sel, key=lambda r: r["alpha"])
                    )
                )
        out.append(_claim("alpha_insensitive", _verdict(ok_all), "; ".join(ev)))
    else:
        out.append(_claim("alpha_insensitive", "not tested", "no threshold run"))

    summary = {(r["task"], r["block"]): r for r in results.get("tasks_summary") or []}
    out += _task_claims(summary)

    per_seed = results.get("tasks_per_seed") or []
    if per_seed:
        fulls: dict[str, dict[int, float]] = {}
        for r in per_seed:
            fulls.setdefault(r["task"], {})[r["seed"]] = r["fvu_full"]
        ok = all(
            v <= CRITERIA["fvu_max"][t]
            for t, by_seed in fulls.items()
            for v in by_seed.values()
        )
        ev = "; ".join(
            f"{_TASK_LABEL[t]}: "
            + ", ".join(f"seed {sd}: {v:.4f}" for sd, v in sorted(by_seed.items()))
            + f" (criterion ≤ {CRITERIA['fvu_max'][t]})"
            for t, by_seed in fulls.items()
        )
        out.append(_claim("full_fvu_small", _verdict(ok), ev))
    else:
        out.append(_claim("full_fvu_small", "not tested", "no task run"))
    return out


def _task_claims(summary: dict[tuple[str, str], dict]) -> list[dict[str, str]]:
    """Verdicts of the three section-4 ablation claims from the per-block summary."""
    rr_small = CRITERIA["rr_small"]

    def d(task, block):
        return summary[(task, block)]["delta_fvu_mean"]

    def evidence(task):
        return ", ".join(
            f"ΔFVU({_BLOCK_LABEL[b]}) = "
            + _pm(
                summary[(task, b)]["delta_fvu_mean"],
                summary[(task, b)]["delta_fvu_sem"],
            )
            for b in BLOCKS
        )

    def flipflop():
        biggest = max(d("flipflop", b) for b in BLOCKS)
        ok = (
            d("flipflop", "CR") == biggest and d("flipflop", "RR") <= rr_small * biggest
        )
        return ok, evidence("flipflop") + f" (T_RR criterion ≤ {rr_small} × largest)"

    def sine():
        biggest = max(d("sine", b) for b in BLOCKS)
        svals = {b: summary[("sine", b)]["s_delta_t_mean"] for b in BLOCKS}
        finite = [v for v in svals.values() if not math.isnan(v)]
        ok = (
            max(d("sine", "CR"), d("sine", "CC")) == biggest
            and d("sine", "RR") <= rr_small * biggest
            and bool(finite)
            and svals["CR"] == max(finite)
        )
        s_text = ", ".join(
            f"S_ΔT({_BLOCK_LABEL[b]}) = {_sci(v)}" for b, v in svals.items()
        )
        return ok, evidence("sine") + "; " + s_text

    def cdi():
        return d("cdi", "CC") == max(d("cdi", b) for b in BLOCKS), evidence("cdi")

    out = []
    for task, cid, judge in (
        ("flipflop", "flipflop_cr_largest", flipflop),
        ("sine", "sine_complement", sine),
        ("cdi", "cdi_cc_dominates", cdi),
    ):
        if not all((task, b) in summary for b in BLOCKS):
            out.append(_claim(cid, "not tested", f"no {_TASK_LABEL[task]} run"))
            continue
        full = summary[(task, "CR")]["fvu_full_mean"]
        if not full <= CRITERIA["learned_fvu"]:
            out.append(
                _claim(
                    cid,
                    "inconclusive",
                    f"the full {_TASK_LABEL[task]} networks did not learn the task "
                    f"(mean FVU {full:.3g} > {CRITERIA['learned_fvu']})",
                )
            )
            continue
        ok, ev = judge()
        out.append(_claim(cid, _verdict(ok), ev))
    return out


def _verdict(ok: bool) -> str:
    return "supported" if ok else "not supported"


# --------------------------------------------------------------------------- figures


def _plt():
    import matplotlib as mpl

    mpl.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 9,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "xtick.labelsize": 8,
            "ytick.labelsize": 8,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    return plt


_TEX = {"RR": r"$T_{RR}$", "CR": r"$T_{C\to R}$", "CC": r"$T_{CC}$"}


def figure1(
    copy_rows: Sequence[dict[str, Any]], path: str | os.PathLike
) -> Path | None:
    """Copy-task ablation lattice (the paper's Figure 1).

    One panel per construction at the largest width: mean replay accuracy of each
    subset of {T_RR, T_C→R} (x axis), without (filled circle) and with (open square)
    T_CC additionally removed, the two joined by a gray segment. With several seeds the
    points of each seed are drawn side by side. The paper's values for its dense
    orthogonal Nh = 72 model are black crosses.
    """
    if not copy_rows:
        return None
    plt = _plt()
    from matplotlib.lines import Line2D

    width = max(r["hidden"] for r in copy_rows)
    constructions = [
        c for c in CONSTRUCTIONS if any(r["construction"] == c for r in copy_rows)
    ]
    bases = [(), ("RR",), ("CR",), ("RR", "CR")]
    fig, axes = plt.subplots(
        1,
        len(constructions),
        figsize=(1.75 * len(constructions) + 0.7, 2.9),
        sharey=True,
        squeeze=False,
    )
    lo = 1.0
    for ax, c in zip(axes[0], constructions, strict=True):
        by_seed = sorted(_copy_acc(copy_rows, c, width).items())
        for k, ((_n, _seed), accs) in enumerate(by_seed):
            off = 0.08 * (k - 0.5 * (len(by_seed) - 1))
            for i, base in enumerate(bases):
                with_cc = tuple(b for b in BLOCKS if b in (*base, "CC"))
                a0, a1 = accs[base]["accuracy"], accs[with_cc]["accuracy"]
                lo = min(lo, a0, a1)
                x0, x1 = i - 0.14 + off, i + 0.14 + off
                ax.plot([x0, x1], [a0, a1], color="0.65", lw=1, zorder=1)
                ax.scatter(x0, a0, s=20, color="C0", zorder=2)
                ax.scatter(x1, a1, s=20, marker="s", fc="white", ec="C3", zorder=3)
        if c == "dense_orthogonal" and width == 72:
            for i, base in enumerate(bases):
                with_cc = tuple(b for b in BLOCKS if b in (*base, "CC"))
                paper = pv.COPY_DENSE_ORTHOGONAL_72
                ax.scatter(
                    [i - 0.14, i + 0.14],
                    [paper[base], paper[with_cc]],
                    marker="x",
                    s=16,
                    lw=1,
                    color="black",
                    zorder=4,
                )
        ax.set_xticks(range(len(bases)))
        ax.set_xticklabels(
            [
                "none",
                "−" + _TEX["RR"],
                "−" + _TEX["CR"],
                "−" + _TEX["RR"] + "\n−" + _TEX["CR"],
            ]
        )
        ax.set_xlim(-0.5, len(bases) - 0.5)
        ax.set_title(f"{_CONSTRUCTION_LABEL[c]}, $N_h = {width}$")
        ax.grid(axis="y", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
    axes[0, 0].set_ylim(min(0.45, lo - 0.03), 1.02)
    axes[0, 0].set_ylabel("mean replay accuracy\n(128 lags, held out)")
    handles = [
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=5,
            color="C0",
            label="blocks on the x axis removed",
        ),
        Line2D(
            [],
            [],
            ls="",
            marker="s",
            ms=5,
            mfc="white",
            mec="C3",
            label="… and −" + _TEX["CC"],
        ),
        Line2D(
            [],
            [],
            ls="",
            marker="x",
            ms=5,
            color="black",
            label="paper (dense orth., 72)",
        ),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.supxlabel("Schur coupling blocks removed", fontsize=9, y=0.12)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=200)
    plt.close(fig)
    return path


def figure2(summary: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path | None:
    """Single-block ablations across tasks (the paper's Figure 2).

    Top: ΔFVU; bottom: S_ΔT; bars are means over seeds with SEM error bars, per task
    and block; the paper's published means are black diamonds. Both axes are symlog
    (linear within ±1e-3): the values span orders of magnitude and may be slightly
    negative.
    """
    if not summary:
        return None
    plt = _plt()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    tasks = [
        t for t in ("flipflop", "sine", "cdi") if any(r["task"] == t for r in summary)
    ]
    by = {(r["task"], r["block"]): r for r in summary}
    fig, axes = plt.subplots(2, 1, figsize=(5.2, 4.6), sharex=True)
    bar_w = 0.26
    for ax, metric, ylabel in (
        (axes[0], "delta_fvu", r"$\Delta$FVU"),
        (axes[1], "s_delta_t", "$S_{\\Delta T}$\n(ΔFVU per removed mass)"),
    ):
        top = 0.0
        for j, b in enumerate(BLOCKS):
            for i, t in enumerate(tasks):
                r = by.get((t, b))
                if r is None:
                    continue
                x = i + (j - 1) * bar_w
                mean, sem = r[f"{metric}_mean"], r[f"{metric}_sem"]
                if mean is None or math.isnan(mean):
                    continue
                err = 0.0 if sem is None or math.isnan(sem) else sem
                ax.bar(
                    x,
                    mean,
                    bar_w,
                    yerr=err,
                    capsize=2,
                    color=f"C{j}",
                    error_kw={"lw": 0.8},
                )
                top = max(top, mean + err)
                p = pv.CROSS_TASK.get(t, {}).get(b, {}).get(metric)
                if p is not None:
                    ax.scatter(x, p[0], marker="D", s=14, color="black", zorder=3)
                    top = max(top, p[0])
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylim(top=max(top, 1e-2) * 4)
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
    axes[1].set_xticks(range(len(tasks)))
    axes[1].set_xticklabels([_TASK_LABEL[t] for t in tasks])
    handles = [Patch(color=f"C{j}", label="−" + _TEX[b]) for j, b in enumerate(BLOCKS)]
    handles.append(
        Line2D([], [], ls="", marker="D", ms=4, color="black", label="paper")
    )
    fig.legend(handles=handles, loc="upper center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    path = Path(path)
    fig.savefig(path, dpi=200)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- report


def _copy_section(rows) -> list[str]:
    out = ["## Copy task (paper section 3, Figure 1)", ""]
    out.append(
        "Mean replay accuracy over the 128 replay lags on held-out sequences, per "
        "ablation subset; `n_R` = leading Schur positions with |λ| ≥ α ρ(W); "
        "*mass* = removed relative Schur mass ‖ΔT‖_F/‖T‖_F of removing all three "
        "blocks. Paper values (dense orthogonal, Nh = 72) in brackets."
    )
    out.append("")
    header = ["construction", "Nh", "seed", "n_R"] + [subset_label(s) for s in SUBSETS]
    header.append("mass(all)")
    table_rows = []
    keys = sorted(
        {(r["construction"], r["hidden"], r["seed"]) for r in rows},
        key=lambda k: (CONSTRUCTIONS.index(k[0]), k[1], k[2]),
    )
    for c, n, seed in keys:
        accs = _copy_acc(rows, c, n)[(n, seed)]
        cells = []
        for s in SUBSETS:
            cell = _fmt(accs[s]["accuracy"])
            if c == "dense_orthogonal" and n == 72:
                cell += f" [{pv.COPY_DENSE_ORTHOGONAL_72[s]:.3f}]"
            cells.append(cell)
        table_rows.append(
            [
                _CONSTRUCTION_LABEL[c],
                n,
                seed,
                accs[()]["n_R"],
                *cells,
                _fmt(accs[("RR", "CR", "CC")]["removed_mass"]),
            ]
        )
    out.append(_table(header, table_rows))
    out += ["", "![Figure 1](figure1.png)", ""]
    return out


def _alpha_section(rows) -> list[str]:
    out = ["## Threshold sensitivity (paper Table 1)", ""]
    out.append("Mean replay accuracy over 128 lags; paper values in brackets.")
    out.append("")
    header = ["α", "model", "seed", "n_R", "full", "−T_CC", "−T_C→R"]
    table_rows = []
    for r in sorted(
        rows,
        key=lambda r: (CONSTRUCTIONS.index(r["construction"]), r["seed"], r["alpha"]),
    ):
        p = (
            pv.TABLE1.get((round(r["alpha"], 2), r["construction"]))
            if r["hidden"] == 72
            else None
        )

        def br(key, spec=".3f", p=p):
            return f" [{format(p[key], spec)}]" if p else ""

        table_rows.append(
            [
                f"{r['alpha']:.2f}",
                _CONSTRUCTION_LABEL[r["construction"]] + f" {r['hidden']}",
                r["seed"],
                f"{r['n_R']}{br('n_R', 'd')}",
                f"{r['full']:.3f}{br('full')}",
                f"{r['-CC']:.3f}{br('-CC')}",
                f"{r['-CR']:.3f}{br('-CR')}",
            ]
        )
    out.append(_table(header, table_rows))
    out.append("")
    return out


def _tasks_section(summary, per_seed) -> list[str]:
    out = ["## Across tasks (paper section 4, Figure 2)", ""]
    out.append(
        "Single-block ablations, mean ± SEM over seeds; the paper's values beside them "
        "(– where the paper gives no number)."
    )
    out.append("")
    header = [
        "task",
        "block",
        "ΔFVU",
        "ΔFVU (paper)",
        "S_ΔT",
        "S_ΔT (paper)",
        "removed mass",
        "seeds",
    ]
    table_rows = []
    for r in summary:
        p = pv.CROSS_TASK.get(r["task"], {}).get(r["block"], {})
        pd, ps = p.get("delta_fvu"), p.get("s_delta_t")
        table_rows.append(
            [
                _TASK_LABEL[r["task"]],
                _BLOCK_LABEL[r["block"]],
                _pm(r["delta_fvu_mean"], r["delta_fvu_sem"]),
                _pm(*pd) if pd else "–",
                _pm(r["s_delta_t_mean"], r["s_delta_t_sem"]),
                _pm(*ps) if ps else "–",
                _sci(r["removed_mass_mean"]),
                r["n_seeds"],
            ]
        )
    out.append(_table(header, table_rows))
    out += ["", "Full-model held-out FVU:", ""]
    fulls: dict[str, dict[int, float]] = {}
    for r in per_seed:
        fulls.setdefault(r["task"], {})[r["seed"]] = r["fvu_full"]
    table_rows = []
    for t, by_seed in fulls.items():
        vals = list(by_seed.values())
        table_rows.append(
            [
                _TASK_LABEL[t],
                ", ".join(f"{v:.4f}" for _, v in sorted(by_seed.items())),
                f"{np.mean(vals):.4f}",
                f"{pv.FULL_FVU[t]:.4f}",
            ]
        )
    out.append(_table(["task", "FVU per seed", "mean", "paper"], table_rows))
    out += ["", "![Figure 2](figure2.png)", ""]
    return out


def write_report(results: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write ``report.md``, the figures, ``results.json`` and CSV tables.

    Parameters
    ----------
    results : dict
        As returned by :func:`rnnschur.experiments.run`, optionally with extra keys
        ``"started"``, ``"machine"`` and ``"version"`` (strings) for the header.
    out_dir : path
        Created if missing; existing report files are overwritten.

    Returns
    -------
    Path of ``report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    claims = check_claims(results)
    results = {**results, "claims": claims}
    (out / "results.json").write_text(
        json.dumps(results, indent=2, default=_json_default)
    )
    for key in ("copy", "alpha", "tasks_per_seed", "tasks_summary", "models", "claims"):
        _write_csv(out / f"{key}.csv", results.get(key) or [])
    settings = results.get("settings", {})
    lines = ["# rnnschur reproduction report", ""]
    for note in settings.get("notes", ()):
        lines += [f"> **{note}**", ""]
    lines.append(f"Paper: {pv.SOURCE}.")
    lines.append("")
    meta = [
        ("mode", settings.get("mode", "?")),
        ("rnnschur", results.get("version", "?")),
        (
            "machine",
            results.get("machine") or f"{platform.machine()}, {os.cpu_count()} cores",
        ),
        ("started", results.get("started", "?")),
        (
            "wall time",
            (
                f"{results.get('timing', {}).get('total_seconds', math.nan):.1f} s"
                f" (training or loading {results.get('timing', {}).get('train_or_load_seconds', math.nan):.1f} s)"
            ),
        ),
        ("split threshold", f"α = {settings.get('alpha')}"),
        ("held-out batch", f"{settings.get('eval_size')} sequences per model"),
    ]
    lines.append(_table(["", ""], meta))
    lines.append("")
    lines += [
        "## Claims",
        "",
        "Criteria: "
        + ", ".join(f"{k} = {v}" for k, v in CRITERIA.items() if k != "fvu_max")
        + f", FVU limits {CRITERIA['fvu_max']}.",
        "",
    ]
    lines.append(
        _table(
            ["claim", "this run", "evidence"],
            [[c["claim"], f"**{c['verdict']}**", c["evidence"]] for c in claims],
        )
    )
    lines.append("")
    if results.get("copy"):
        figure1(results["copy"], out / "figure1.png")
        lines += _copy_section(results["copy"])
    if results.get("alpha"):
        lines += _alpha_section(results["alpha"])
    if results.get("tasks_summary"):
        figure2(results["tasks_summary"], out / "figure2.png")
        lines += _tasks_section(
            results["tasks_summary"], results.get("tasks_per_seed", [])
        )
    if results.get("models"):
        lines += ["## Trained models", ""]
        lines.append(
            _table(
                ["checkpoint", "train time (s)", "monitor FVU", "monitor accuracy"],
                [
                    [
                        m["key"],
                        _fmt(m["train_seconds"], ".1f"),
                        _sci(m["final_eval_fvu"]),
                        _fmt(m["final_eval_accuracy"], ".4f"),
                    ]
                    for m in results["models"]
                ],
            )
        )
        lines.append("")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    msg = f"not JSON serialisable: {type(o).__name__}"
    raise TypeError(msg)
