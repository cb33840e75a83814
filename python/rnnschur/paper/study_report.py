"""``rnnschur study-report DIR``: the robustness study's report (``study.md``), its
per-claim table (``study_claims.csv``), the FVU table (``study_fvu.csv``) and the
distribution figures, from a sweep's ``results.parquet``."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..ablation import BLOCK_NAMES
from . import values as pv
from .claims import BY_CONSTRUCTION, CRITERIA
from .labels import BLOCK_LABELS, subset_label
from .study import (
    BOOTSTRAP,
    NOT_PER_MODEL,
    PAPER_TASK_SETTING,
    PER_MODEL_FORMS,
    STUDY_RULES,
    choose_defaults,
    claim_table,
    condition_label,
    conditions,
    fvu_table,
    load_models,
)
from .study_figures import study_figures
from .tables import fmt, markdown_table, sci, write_csv

__all__ = [
    "COPY_ACC_FLAG",
    "add_study_report_parser",
    "paper_comparisons",
    "robustness",
    "write_study_report",
]

#: A copy accuracy off the paper's by more than this is a disagreement in size (the
#: reproduction report's rule).
COPY_ACC_FLAG = 0.1

_Rows = Sequence[dict[str, Any]]


def _mean(values: Sequence[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    return float(np.mean(v)) if v else math.nan


def _paper_copy(construction: str) -> dict[str, float]:
    """The paper's copy accuracies for a construction, keyed by subset name (empty
    for a construction the paper publishes none for, such as ``cayley_free``)."""
    if construction == "dense_orthogonal":
        return {
            "+".join(s) or "none": v for s, v in pv.COPY_DENSE_ORTHOGONAL_72.items()
        }
    if construction == "cayley":
        row = pv.TABLE1[(0.90, "cayley")]
        return {"none": row["full"], "CC": row["-CC"], "CR": row["-CR"]}
    return {}


def _within(ours: float, paper: float) -> bool:
    flag = CRITERIA["ratio_flag"]
    return paper > 0 and 1 / flag <= ours / paper <= flag


def _quantity(kind: str, block: str) -> str:
    """``ΔFVU(T_C→R)``, ``S_ΔT(T_CC)``."""
    return f"{kind}({BLOCK_LABELS[block]})"


def paper_comparisons(models: _Rows) -> list[dict[str, Any]]:
    """Per condition, its means beside every number the paper reports for it.

    Rows: ``condition``, ``quantity`` (as the report prints it: ``intact FVU``,
    ``ΔFVU(T_C→R)``, ``S_ΔT(T_CC)``, ``accuracy −T_C→R``), ``ours``, ``paper``,
    ``agrees``. FVU, ΔFVU and S_ΔT agree within a factor ``CRITERIA["ratio_flag"]``
    either way (ΔFVU and S_ΔT are means over the learned models, FVU over all trained
    ones); copy accuracies (Nh = 72, the paper's width for them) within
    :data:`COPY_ACC_FLAG` (means over all trained models). ``agrees`` is ``None``
    (not compared) where our mean is missing, e.g. a condition with no learned model.
    """
    out = []
    for cond in conditions(models):
        d = dict(cond)
        ms = [m for m in models if m["condition"] == cond and "none" in m["metric"]]
        if not ms:
            continue
        label = condition_label(cond)
        if d["task"] == "copy":
            # The paper's copy numbers are for Nh = 72 only.
            published = _paper_copy(str(d["construction"])) if d["hidden"] == 72 else {}
            for s, p in published.items():
                ours = _mean([m["accuracy"].get(s, math.nan) for m in ms])
                ok = abs(ours - p) <= COPY_ACC_FLAG
                name = f"accuracy {subset_label(s.split('+') if s != 'none' else ())}"
                out.append(_cmp(label, name, ours, p, ok))
            continue
        if d["task"] not in pv.FULL_FVU:
            continue
        fvu = _mean([m["fvu"]["none"] for m in ms])
        p = pv.FULL_FVU[d["task"]]
        out.append(_cmp(label, "intact FVU", fvu, p, _within(fvu, p)))
        learned = [m for m in ms if m["fvu"]["none"] <= CRITERIA["learned_fvu"]]
        for b in BLOCK_NAMES:
            for key, name, kind in (
                ("delta_fvu", "delta", "ΔFVU"),
                ("s_delta_t", "delta_per_mass", "S_ΔT"),
            ):
                paper = pv.CROSS_TASK[d["task"]][b][key]
                if paper is None:
                    continue
                ours = _mean([m[name].get(b, math.nan) for m in learned])
                ok = _within(ours, paper[0])
                out.append(_cmp(label, _quantity(kind, b), ours, paper[0], ok))
    return out


def _cmp(
    cond: str, quantity: str, ours: float, paper: float, ok: bool
) -> dict[str, Any]:
    # A missing mean is no evidence either way: not compared, never a disagreement.
    compared = math.isfinite(ours) and math.isfinite(paper)
    return {
        "condition": cond,
        "quantity": quantity,
        "ours": ours,
        "paper": paper,
        "agrees": ok if compared else None,
    }


def robustness(row: dict[str, Any]) -> str:
    """Neutral wording of one claim-table row (rules: :data:`STUDY_RULES`)."""
    if row["label"] == "decided by construction":
        return "decided by construction (not counted)"
    # Outside the construction the paper's claim is about: read, but labelled apart.
    prefix = "generalisation: " if row["label"] == "generalisation" else ""
    if row["judged"] < STUDY_RULES["min_models"]:
        return prefix + "too few models"
    if row["ci_low"] > STUDY_RULES["most"]:
        return prefix + "holds in most solutions"
    if row["ci_high"] < 1 - STUDY_RULES["most"]:
        return prefix + "fails in most solutions"
    return prefix + "mixed"


def _method_section() -> list[str]:
    crit = CRITERIA
    forms = [
        f"- `{cid}`: {text.format(**crit)}." for cid, text in PER_MODEL_FORMS.items()
    ]
    forms += [
        f"- `{cid}`: not judged per model: it {why}."
        for cid, why in NOT_PER_MODEL.items()
    ]
    fixed = "; ".join(f"{c}: {why}" for c, why in BY_CONSTRUCTION.items())
    return [
        "## Method",
        "",
        (
            "A condition is a task, a construction, a width and the value of every task or "
            "training parameter that varies among the task's models. Each claim below is judged on "
            "each trained model by its per-model form, with the thresholds of the "
            "reproduction report's claim checks. The margin rule of every *largest* / "
            "*dominates* claim: the weakest claimed block must exceed the strongest other "
            f"block by more than {crit['margin_rel']:g} × its own value (one model has no "
            "SEM, so the SEM term of the rule is absent here)."
        ),
        "",
        *forms,
        "",
        (
            "Precondition of the ablation claims (as in the reproduction report): a copy "
            f"model must reach intact replay accuracy ≥ {crit['solved_accuracy']}, a "
            f"flip-flop / sine / CDI model intact FVU ≤ {crit['learned_fvu']}; other models "
            "are excluded and counted (`excluded`). Models that diverged or failed are "
            f"counted as `not trained`. By construction ({fixed}): the ablation claims are "
            "labelled *decided by construction* and not counted. Replay accuracy is the sign "
            "agreement of fair ±1 entries, so chance is "
            f"{crit['chance_accuracy']}; `below chance` counts copy models with an ablated "
            "accuracy below it."
        ),
        "",
        (
            "Fraction: the judged models for which the claim holds, with a percentile "
            f"bootstrap {BOOTSTRAP['level']:.0%} interval ({BOOTSTRAP['resamples']} "
            f"resamples of the models, generator seed {BOOTSTRAP['seed']}, the same for "
            "every condition). When every judged model agrees, the percentile interval "
            "collapses to that value whatever the number of models. Wording: *holds in "
            f"most solutions* when the interval's lower end exceeds {STUDY_RULES['most']}, "
            f"*fails in most* when its upper end is below {1 - STUDY_RULES['most']:g}, "
            f"*mixed* otherwise, *too few models* below {STUDY_RULES['min_models']} judged."
            " The paper makes its `copy_orth_*` claims about the dense orthogonal "
            "solution only, so they are judged on dense orthogonal models; on the other "
            "trained constructions the same per-model test is labelled *generalisation* "
            "and its reading is prefixed so, apart from the paper's claim."
        ),
        "",
    ]


def _claims_section(rows: _Rows) -> list[str]:
    table = [
        [
            r["condition"],
            f"`{r['claim']}`",
            r["label"],
            f"{r['holds']}/{r['judged']}",
            fmt(r["fraction"], ".2f"),
            f"[{fmt(r['ci_low'], '.2f')}, {fmt(r['ci_high'], '.2f')}]",
            r["excluded"],
            r["not_trained"],
            fmt(r["below_chance"]),
            robustness(r),
        ]
        for r in rows
    ]
    header = ["condition", "claim", "label", "holds", "fraction", "95 % interval",
              "excluded", "not trained", "below chance", "reading"]  # fmt: skip
    return ["## Claims per condition", "", markdown_table(header, table), ""]


def _fvu_section(rows: _Rows, defaults: dict[str, dict[str, Any]]) -> list[str]:
    chosen = {r["condition"] for r in defaults.values()}
    table = [
        [
            r["condition"] + (" **(default)**" if r["condition"] in chosen else ""),
            "reproduce" if r["reproduce_training"] else "other",
            r["models"],
            f"{sci(r['fvu_mean'])} ± {sci(r['fvu_sem'])}",
            sci(r["paper"]),
            fmt(r["ratio"], ".2g"),
        ]
        for r in rows
    ]
    picks = [
        f"- {t}: {r['condition']} (ratio {r['ratio']:.2g})" for t, r in defaults.items()
    ]
    return [
        "## Intact-model held-out FVU and the default-choosing rule",
        "",
        (
            "Where the paper is silent about a task detail, the reproduction's default is "
            "the variant whose intact-model mean held-out FVU (over all trained models of "
            "the condition) is closest to the paper's in |log(ours / paper)|; ablation "
            "results never enter. The rule chooses a task detail, not a training "
            "schedule: candidates are only the conditions trained with the "
            "reproduction's settings (training *reproduce*: the paper's Adam settings, "
            "learning rate held constant), and among them the task's conditions in the "
            f"paper's section 4 setting ({PAPER_TASK_SETTING[0]}, Nh "
            f"{PAPER_TASK_SETTING[1]}) when the sweep has them. The copy task has no "
            "published FVU."
        ),
        "",
        markdown_table(
            ["condition", "training", "models", "FVU mean ± SEM", "paper", "ratio"],
            table,
        ),
        "",
        "Chosen per task:" if picks else "No task with a published FVU in this sweep.",
        "",
        *picks,
        "",
    ]


def _summary_section(claims: _Rows, comparisons: _Rows) -> list[str]:
    by_cond: dict[str, list[dict[str, Any]]] = {}
    for c in comparisons:
        by_cond.setdefault(c["condition"], []).append(c)
    lines = [
        "## Summary",
        "",
        (
            "Each condition's means beside the numbers the paper publishes for it "
            f"(FVU, ΔFVU, S_ΔT within a factor {CRITERIA['ratio_flag']:g} either way; copy "
            f"accuracies at Nh = 72 within {COPY_ACC_FLAG}; a condition without a "
            "published number is not listed; a number we lack, e.g. ΔFVU of a "
            "condition with no learned model, is *not compared* and not counted):"
        ),
        "",
    ]
    for cond, all_cs in by_cond.items():
        cs = [c for c in all_cs if c["agrees"] is not None]
        off = [c for c in cs if not c["agrees"]]
        if not off:
            text = f"matches the paper's {len(cs)} published numbers"
        else:
            gaps = ", ".join(
                f"{c['quantity']} {sci(c['ours'])} vs {sci(c['paper'])}" for c in off
            )
            text = f"differs on {len(off)} of {len(cs)} numbers ({gaps})"
        skipped = [c["quantity"] for c in all_cs if c["agrees"] is None]
        if skipped:
            text += f"; not compared (no value of ours): {', '.join(skipped)}"
        lines.append(f"- {cond}: {text}.")
    lines += [
        "",
        "Each claim by the reading of its interval per condition (Method):",
        "",
    ]
    readings: dict[str, dict[str, list[str]]] = {}
    for r in claims:
        readings.setdefault(r["claim"], {}).setdefault(robustness(r), []).append(
            r["condition"]
        )
    for cid, groups in readings.items():
        parts = "; ".join(
            f"{w} in {len(cs)} ({'; '.join(cs)})" for w, cs in groups.items()
        )
        lines.append(f"- `{cid}`: {parts}.")
    return [*lines, ""]


def write_study_report(
    sweep_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``study.md``, ``study_claims.csv``, ``study_fvu.csv``,
    ``study_numbers.csv`` and the figures for a sweep folder; returns ``study.md``.

    ``sweep_dir`` is the sweep folder or its ``results.parquet``; ``out_dir`` defaults
    to ``report`` in the sweep folder.
    """
    models, varying = load_models(sweep_dir)
    folder = Path(sweep_dir)
    if folder.is_file():
        folder = folder.parent
    out = Path(out_dir) if out_dir is not None else folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    claims = claim_table(models)
    fvus = fvu_table(models)
    defaults = choose_defaults(fvus)
    comparisons = paper_comparisons(models)
    write_csv(out / "study_claims.csv", claims)
    write_csv(out / "study_fvu.csv", fvus)
    write_csv(out / "study_numbers.csv", comparisons)
    figures = study_figures(models, out)
    n_ok = sum(m["status"] == "ok" for m in models)
    lines = [
        "# Robustness study: the paper's claims over many trained solutions",
        "",
        (
            f"Sweep `{Path(sweep_dir)}`: {len(models)} models ({n_ok} trained, "
            f"{len(models) - n_ok} diverged or failed) in {len(conditions(models))} "
            "conditions; parameters that vary per task: "
            + "; ".join(f"{t}: {', '.join(v) or 'none'}" for t, v in varying.items())
            + "."
        ),
        "",
    ]
    lines += _summary_section(claims, comparisons)
    lines += _method_section() + _claims_section(claims) + _fvu_section(fvus, defaults)
    lines += [
        "## Distributions",
        "",
        (
            "Every trained model is a point (learned or not; jittered sideways), the bar "
            "its condition's mean; ΔFVU and S_ΔT on a symmetric log axis (linear within "
            "±1e-3), replay accuracy with chance (0.5) dotted."
        ),
        "",
        *[f"![{p.stem}]({p.name})" for p in figures],
    ]
    path = out / "study.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def add_study_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Declare ``rnnschur study-report``."""
    p = subparsers.add_parser(
        "study-report",
        help="the robustness study's report from a sweep folder",
        description=(
            "Judge the paper's claims on every trained model of a sweep "
            "(DIR/results.parquet) and write study.md, the per-claim table "
            "(study_claims.csv), the intact-FVU table and the distribution figures."
        ),
    )
    p.add_argument(
        "dir",
        metavar="DIR",
        help="output folder of rnnschur sweep, or its results.parquet",
    )
    p.add_argument(
        "--out", metavar="REPORT_DIR", help="where to write (default: DIR/report)"
    )
    p.set_defaults(func=cmd_study_report)
    return p


def cmd_study_report(args: argparse.Namespace) -> int:
    """Run ``rnnschur study-report``; returns the exit code."""
    try:
        path = write_study_report(args.dir, args.out)
    except (ImportError, OSError, ValueError) as exc:
        # ImportError: pyarrow missing (the message names the extra to install);
        # OSError: a missing table, an unreadable file or an unwritable folder.
        print(f"rnnschur study-report: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0
