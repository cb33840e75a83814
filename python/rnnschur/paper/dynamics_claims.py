"""Which account explains the ablation profile: the Schur account (the removed
coupling mass) or the subspace account (where the removed coupling sits relative to
the activity and the readout)? Rank correlations across models with a model-level
bootstrap (:func:`rnnschur.predictor_analysis`) and a neutral verdict
(:func:`rnnschur.predictor_verdict`), by the fixed rule :data:`PREDICTOR_RULE`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..predictors import predictor_analysis, predictor_verdict
from .tables import copy_accuracies

__all__ = ["ACCOUNTS", "PREDICTOR_RULE", "effect_observations", "predictor_results"]

_Rows = Sequence[dict[str, Any]]

#: The two accounts and their predictors (columns of the subspace rows). An account
#: scores its best |ρ|, re-chosen in every bootstrap replicate.
ACCOUNTS: dict[str, tuple[str, ...]] = {
    "Schur": ("removed_mass",),
    "subspace": (
        "activity_weighted_size",
        "readout_weighted_size",
        "align_row",
        "align_col",
        "overlap_col_readout",
        "overlap_row_pc90",
    ),
}

#: The rule behind the verdict, fixed before any run and printed in the report.
PREDICTOR_RULE: dict[str, Any] = {
    # A block whose relative Schur mass is at rounding level carries no coupling
    # (Cayley / normal networks): its "ablation" is a no-op and its subspaces describe
    # rounding noise, so it is not an observation.
    "min_removed_mass": 1e-6,
    "n_boot": 2000,
    "confidence": 0.95,
    "min_models": 5,
    "seed": 0,
}

#: The two analyses: effect name and the tasks pooled in it.
ANALYSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "tasks": ("ΔFVU", ("flipflop", "sine", "cdi")),
    "copy": ("replay accuracy loss", ("copy",)),
}


def _task_effects(per_seed: _Rows) -> dict[tuple[str, int, str], float]:
    return {(r["task"], r["seed"], r["block"]): r["delta_fvu"] for r in per_seed}


def _copy_effects(copy: _Rows) -> dict[tuple[str, int, int, str], float]:
    out = {}
    for c in {r["construction"] for r in copy}:
        for (n, seed), accs in copy_accuracies(copy, c).items():
            for b in ("RR", "CR", "CC"):
                if () in accs and (b,) in accs:
                    loss = accs[()]["accuracy"] - accs[(b,)]["accuracy"]
                    out[(c, n, seed, b)] = loss
    return out


def effect_observations(
    subspaces: _Rows, copy: _Rows, per_seed: _Rows
) -> dict[str, list[dict[str, Any]]]:
    """Subspace rows joined with their ablation effect, per analysis.

    Returns ``{"tasks": rows, "copy": rows}``; each row is a subspace row (one model
    and block) with ``"effect"``, and ``"excluded"`` saying why it is left out of the
    statistics (``None`` if it is in).
    """
    te, ce = _task_effects(per_seed), _copy_effects(copy)
    preds = [p for a in ACCOUNTS.values() for p in a]
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in ANALYSES}
    for r in subspaces:
        if r["task"] == "copy":
            eff = ce.get((r["construction"], r["hidden"], r["seed"], r["block"]))
            name = "copy"
        else:
            eff = te.get((r["task"], r["seed"], r["block"]))
            name = "tasks"
        if eff is None:
            continue
        why = None
        if not r["removed_mass"] > PREDICTOR_RULE["min_removed_mass"]:
            why = f"removed mass ≤ {PREDICTOR_RULE['min_removed_mass']:g}"
        elif not all(_finite(r.get(p)) for p in preds):
            why = "a predictor is undefined"
        out[name].append({**r, "effect": float(eff), "excluded": why})
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def predictor_results(
    subspaces: _Rows, copy: _Rows, per_seed: _Rows
) -> dict[str, dict[str, Any]]:
    """Per analysis: the observations, the correlation records and the verdict.

    An analysis with fewer than 2 models (or 3 observations) after exclusions, or
    whose effect is the same for every observation, has no correlations, and its
    verdict says so. A predictor that is constant over the observations (no ranks
    to correlate) is left out, and ``"notes"`` says so; an account left with no
    predictor makes the verdict inconclusive.
    """
    obs = effect_observations(subspaces, copy, per_seed)
    out = {}
    for name, (effect_name, _tasks) in ANALYSES.items():
        if not obs[name]:
            continue
        rows = [r for r in obs[name] if r["excluded"] is None]
        res: dict[str, Any] = {
            "effect": effect_name,
            "observations": obs[name],
            "n_obs": len(rows),
            "n_models": len({r["key"] for r in rows}),
            "n_excluded": len(obs[name]) - len(rows),
            "correlations": [],
            "notes": [],
        }
        out[name] = res
        if res["n_models"] < 2 or len(rows) < 3:
            res["verdict"] = "too_few_models"
            res["verdict_text"] = (
                f"Inconclusive: {res['n_models']} model(s) and {len(rows)} "
                "observation(s) after exclusions; no correlation can be estimated."
            )
            continue
        effect = np.array([r["effect"] for r in rows], float)
        if np.all(effect == effect[0]):
            res["verdict"] = "constant_effect"
            res["verdict_text"] = (
                f"Inconclusive: {effect_name} is {effect[0]:g} for all {len(rows)} "
                "observations, so no rank correlation is defined."
            )
            continue
        _correlate(res, rows, effect)
    return out


def _correlate(res: dict[str, Any], rows: _Rows, effect: np.ndarray) -> None:
    """Fill ``res`` with the correlations and verdict over ``rows``, leaving out
    (with a note) every predictor that is constant over them."""
    rule = PREDICTOR_RULE
    preds: dict[str, np.ndarray] = {}
    accounts: dict[str, list[str]] = {}
    for account, members in ACCOUNTS.items():
        for p in members:
            v = np.array([r[p] for r in rows], float)
            if np.all(v == v[0]):
                res["notes"].append(
                    f"`{p}` ({account} account) is {v[0]:g} for every observation "
                    "and is left out: a constant has no rank correlation."
                )
                continue
            preds[p] = v
            accounts.setdefault(account, []).append(p)
    if not preds:
        res["verdict"] = "no_predictor"
        res["verdict_text"] = "Inconclusive: every predictor is constant."
        return
    an = predictor_analysis(
        effect,
        preds,
        [r["key"] for r in rows],
        n_boot=rule["n_boot"],
        confidence=rule["confidence"],
        rng=rule["seed"],
        effect_name=res["effect"],
    )
    res["correlations"] = an.to_records()
    if len(accounts) < len(ACCOUNTS):
        gone = ", ".join(a for a in ACCOUNTS if a not in accounts)
        res["verdict"] = "no_predictor"
        res["verdict_text"] = (
            f"Inconclusive: the {gone} account has no non-constant predictor, so "
            "the accounts cannot be compared."
        )
        return
    verdict = predictor_verdict(an, accounts=accounts, min_models=rule["min_models"])
    res["verdict"] = verdict.outcome
    res["verdict_text"] = verdict.text
