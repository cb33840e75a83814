"""The report's dynamics section: which account predicts the ablation effect (the
verdict of :mod:`rnnschur.paper.dynamics_claims`), the subspace measures per block,
the fixed-point structure of each task network and what each ablation does to it,
and the two figures (:mod:`rnnschur.paper.dynamics_figures`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dynamics_claims import ACCOUNTS, PREDICTOR_RULE
from .dynamics_figures import predictor_figure, trajectory_figure
from .labels import BLOCK_LABELS, CONSTRUCTION_LABELS, TASK_LABELS
from .tables import markdown_table, sci, write_csv

__all__ = ["DYNAMICS_FILES", "dynamics_section", "write_dynamics_data"]

_Rows = Sequence[dict[str, Any]]

#: Files the section writes (removed by the report when the section is absent).
DYNAMICS_FILES = (
    "subspaces.csv",
    "fixed_points.csv",
    "continuation.csv",
    "predictors.csv",
    "predictor_observations.csv",
    "figure_predictors.png",
    "figure_dynamics.png",
)


def write_dynamics_data(out: Path, results: dict[str, Any]) -> None:
    """The section's CSV tables."""
    for key in ("subspaces", "fixed_points", "continuation"):
        if results.get(key):
            write_csv(out / f"{key}.csv", results[key])
    preds = results.get("predictors") or {}
    corr = [{"analysis": k, **c} for k, v in preds.items() for c in v["correlations"]]
    if corr:
        write_csv(out / "predictors.csv", corr)
    obs = [{"analysis": k, **o} for k, v in preds.items() for o in v["observations"]]
    if obs:
        write_csv(out / "predictor_observations.csv", obs)


def _rule_text() -> str:
    r = PREDICTOR_RULE
    subspace = ", ".join(f"`{p}`" for p in ACCOUNTS["subspace"])
    return (
        "Rule, fixed in `rnnschur.paper.dynamics_claims` before any run: observations "
        "are (model, block) pairs; the effect is ΔFVU of the single-block ablation for "
        "flip-flop, sine and CDI (pooled, so differences between tasks contribute) and "
        "the loss of mean replay accuracy for the copy task (a separate analysis). "
        f"Blocks with relative Schur mass ≤ {r['min_removed_mass']:g} are excluded "
        "(Cayley and other normal networks: the ablation removes rounding only). The "
        "*Schur account* is the removed mass `removed_mass` = ‖T_b‖_F/‖T‖_F; the "
        f"*subspace account* is the best of {subspace} (activity- and readout-weighted "
        "perturbation ‖ΔW_b H‖/‖W H‖, ‖W_hy ΔW_b H‖/‖W_hy W H‖; Elsayed alignment "
        "index of the row/column space of ΔW_b with the activity; mean cos² of the "
        "principal angles with the readout space and the top PCs reaching 90 % of the "
        "variance), re-chosen in every bootstrap replicate. Spearman ρ with "
        f"{r['confidence'] * 100:g} % intervals from {r['n_boot']} model-level "
        f"bootstrap resamples; with fewer than {r['min_models']} models the verdict "
        "is *inconclusive*. An account *predicts better* only when the paired interval "
        "of |ρ_leader| − |ρ_runner-up| excludes 0 and the leader's ρ interval "
        "excludes 0 (`rnnschur.predictor_verdict`)."
    )


def _predictor_lines(preds: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, res in preds.items():
        what = "Across tasks" if name == "tasks" else "Copy task"
        out += [
            (
                f"**{what} ({res['effect']}):** {res['verdict_text']} "
                f"({res['n_obs']} observations from {res['n_models']} models; "
                f"{res['n_excluded']} excluded.)"
            ),
            "",
        ]
        if res.get("notes"):
            out += [*(f"- {n}" for n in res["notes"]), ""]
        if res["correlations"]:
            rows = [
                [
                    c["predictor"],
                    next(a for a, m in ACCOUNTS.items() if c["predictor"] in m),
                    sci(c["spearman_rho"]),
                    f"[{sci(c['ci_low'])}, {sci(c['ci_high'])}]",
                ]
                for c in res["correlations"]
            ]
            out += [
                markdown_table(["predictor", "account", "ρ", "95 % interval"], rows),
                "",
            ]
    return out


def _model_label(r: dict[str, Any]) -> str:
    if r["task"] == "copy":
        return f"copy, {CONSTRUCTION_LABELS[r['construction']]} {r['hidden']}"
    return TASK_LABELS[r["task"]]


def _mean(rows: _Rows, key: str) -> float:
    v = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    v = [x for x in v if np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def _subspace_lines(rows: _Rows) -> list[str]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((_model_label(r), r["block"]), []).append(r)
    cols = [
        ("removed mass", "removed_mass"),
        ("‖ΔW_b H‖/‖W H‖", "activity_weighted_size"),
        ("readout-weighted", "readout_weighted_size"),
        ("align. row (null)", "align_row"),
        ("align. col (null)", "align_col"),
        ("cos² col·readout", "overlap_col_readout"),
        ("cos² row·PC90", "overlap_row_pc90"),
    ]
    table = []
    for (label, b), sel in groups.items():
        cells = []
        for _, k in cols:
            cell = sci(_mean(sel, k))
            if k.startswith("align_"):
                cell += f" ({sci(_mean(sel, k + '_null_mean'))})"
            cells.append(cell)
        table.append([label, BLOCK_LABELS[b], len(sel), *cells])
    return [
        (
            "Subspace measures per block on held-out hidden states (mean over seeds; "
            "alignment-index null means in brackets; all per-model values in "
            "`subspaces.csv`):"
        ),
        "",
        markdown_table(["networks", "block", "n", *[c for c, _ in cols]], table),
        "",
    ]


def _fixed_point_lines(fps: _Rows, cont: _Rows) -> list[str]:
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in fps:
        by_model.setdefault(r["key"], []).append(r)
    table = []
    for pts in by_model.values():
        fixed = [p for p in pts if p["status"] == "fixed"]
        saddles: dict[int, int] = {}
        for p in fixed:
            if p["n_unstable"] > 0:
                saddles[p["n_unstable"]] = saddles.get(p["n_unstable"], 0) + 1
        table.append(
            [
                TASK_LABELS[pts[0]["task"]],
                pts[0]["seed"],
                len(fixed),
                sum(p["stable"] for p in fixed),
                ", ".join(f"{n}×{k}" for k, n in sorted(saddles.items())) or "–",
                len(pts) - len(fixed),
                sci(max((p["q"] for p in fixed), default=float("nan"))),
            ]
        )
    out = [
        (
            "Fixed points at zero input (Newton from the network's own held-out states "
            "plus noise; saddles as count × number of unstable modes; slow points are "
            "local minima of q that are not fixed points):"
        ),
        "",
        markdown_table(
            ["task", "seed", "fixed", "stable", "saddles", "slow", "max q"], table
        ),
        "",
        (
            "What each ablation does to them (continuation of every intact fixed point "
            "into the ablated network; sums over seeds; *new* = fixed points of a fresh "
            "search in the ablated network, from other starting states, that no "
            "continued point accounts for; the *none* row repeats that search in the "
            "intact network, so its *new* count is what the search alone misses):"
        ),
        "",
    ]
    agg: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in cont:
        agg.setdefault((r["task"], r["subset"]), []).append(r)
    rows = []
    for (task, subset), sel in agg.items():
        s = {
            k: sum(r[k] for r in sel)
            for k in sel[0]
            if k.endswith(
                ("_vanished", "_changed", "new_points", "n_stable", "n_points")
            )
        }
        rows.append(
            [
                TASK_LABELS[task],
                "none (search baseline)" if subset == "full" else subset,
                sci(_mean(sel, "removed_mass")),
                f"{s['stable_vanished']} / {s['n_stable']}",
                f"{s['stable_changed']}",
                f"{s['saddles_vanished']} / {s['n_points'] - s['n_stable']}",
                f"{s['saddles_changed']}",
                s["new_points"],
            ]
        )
    header = ["task", "ablation", "removed mass", "stable vanished", "stable → unstable",
              "saddles vanished", "saddles changed", "new"]  # fmt: skip
    return [*out, markdown_table(header, rows), ""]


def dynamics_section(results: dict[str, Any], out: Path) -> list[str]:
    """Markdown lines of the section; writes its figures into ``out``."""
    preds = results.get("predictors") or {}
    lines = [
        "## Why can a coupling be removed? Subspaces and fixed points (paper section 5)",
        "",
        _rule_text(),
        "",
    ]
    lines += _predictor_lines(preds)
    if predictor_figure(preds, out / "figure_predictors.png"):
        lines += ["![Effect vs predictors](figure_predictors.png)", ""]
    lines += _subspace_lines(results.get("subspaces") or [])
    if results.get("fixed_points"):
        lines += _fixed_point_lines(
            results["fixed_points"], results.get("continuation") or []
        )
    traj = results.get("_trajectory_rows") or []
    if trajectory_figure(traj, out / "figure_dynamics.png"):
        lines += [
            (
                "Held-out trajectories in the plane of the intact network's top two PCs "
                "(first seed per task), with the fixed points of the intact and ablated "
                "networks: stable filled, saddles open with their unstable modes as "
                "segments (of fixed length in state space: a short one points out of "
                "the plane); gray crosses mark the intact stable points. Two PCs show "
                "the 8 stable points of a 3-bit flip-flop network in pairs."
            ),
            "",
            "![Fixed points, intact vs ablated](figure_dynamics.png)",
            "",
        ]
    return lines
