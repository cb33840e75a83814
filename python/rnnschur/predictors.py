"""Which quantity predicts the effect of an ablation? Rank correlations with a
model-level bootstrap, and a neutral verdict.

Observations are (model, block) pairs: the measured effect (ΔFVU, or the copy
task's accuracy loss) and candidate predictors (removed Schur mass,
activity-weighted perturbation size, alignment with PCs or readout, ...). Blocks of
one model are not independent, so confidence intervals come from resampling whole
models with replacement (a cluster bootstrap); every replicate evaluates all
predictors on the same resample, so differences between predictors are paired.

Spearman's ρ is Pearson's correlation of average ranks (ties share their mean
rank), as in ``scipy.stats.spearmanr``. Intervals are bootstrap percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import as_generator, check_int, check_real

__all__ = [
    "PairedDifference",
    "PredictorAnalysis",
    "Verdict",
    "predictor_analysis",
    "predictor_verdict",
    "spearman",
]


def _rank_corr(Y: np.ndarray) -> np.ndarray:
    """Spearman ρ of column 0 of ``Y`` (n, 1 + P) with every other column; NaN
    where a column is constant."""
    # scipy.stats costs about a second to import; only this analysis needs it.
    from scipy.stats import rankdata

    R = rankdata(Y, axis=0)
    R -= R.mean(axis=0)
    norms = np.sqrt(np.sum(R * R, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (R[:, 1:].T @ R[:, 0]) / (norms[1:] * norms[0])
    return np.where((norms[1:] > 0) & (norms[0] > 0), np.clip(rho, -1.0, 1.0), np.nan)


def _weighted_rank_corr(Y: np.ndarray, Wt: np.ndarray) -> np.ndarray:
    """:func:`_rank_corr` of the sample that repeats row i of ``Y`` ``Wt[r, i]``
    times, for every replicate r: (n_boot, P).

    A repeated value is a tie, so an observation's rank is the count of drawn
    values below it plus the mean position within its tie group.
    """
    ranks = []
    for j in range(Y.shape[1]):
        inv = np.unique(Y[:, j], return_inverse=True)[1].reshape(-1)
        M = np.zeros((Y.shape[0], int(inv.max()) + 1))
        M[np.arange(Y.shape[0]), inv] = 1.0
        S = Wt @ M  # drawn count of every distinct value, increasing order
        below = np.cumsum(S, axis=1) - S
        ranks.append((below + (S + 1.0) / 2.0)[:, inv])
    n = Wt.sum(axis=1, keepdims=True)
    cen = [R - np.sum(Wt * R, axis=1, keepdims=True) / n for R in ranks]
    var = [np.sum(Wt * c * c, axis=1) for c in cen]
    out = np.empty((Wt.shape[0], Y.shape[1] - 1))
    # Relative cut-off: a constant column's centred ranks are rounding noise.
    tiny = 1e-12 * n[:, 0] ** 3
    for j in range(1, Y.shape[1]):
        cov = np.sum(Wt * cen[0] * cen[j], axis=1)
        ok = (var[0] > tiny) & (var[j] > tiny)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = cov / np.sqrt(var[0] * var[j])
        out[:, j - 1] = np.where(ok, np.clip(rho, -1.0, 1.0), np.nan)
    return out


def spearman(x: object, y: object) -> float:
    """Spearman rank correlation of two equal-length 1-D samples.

    Parameters
    ----------
    x, y : array_like, shape (n,), finite real numbers, n >= 2

    Returns
    -------
    float
        In [-1, 1]; NaN if either sample is constant.
    """
    a = _vector(x, "x")
    b = _vector(y, "y", a.size)
    return float(_rank_corr(np.column_stack([a, b]))[0])


def _vector(v: object, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(v)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        msg = f"{name} must be a real numeric array; got dtype {arr.dtype}"
        raise TypeError(msg)
    arr = arr.astype(np.float64)
    if arr.ndim != 1:
        msg = f"{name} must be 1-D; got shape {arr.shape}"
        raise ValueError(msg)
    if n is not None and arr.size != n:
        msg = f"{name} has {arr.size} values; expected {n} (one per observation)"
        raise ValueError(msg)
    if arr.size < 2:
        msg = f"{name} needs at least 2 observations; got {arr.size}"
        raise ValueError(msg)
    if not np.isfinite(arr).all():
        msg = f"{name} must be finite; it contains NaN or inf"
        raise ValueError(msg)
    return arr


@dataclass(frozen=True)
class PairedDifference:
    """Bootstrap of ``|ρ_a| − |ρ_b|`` on paired resamples.

    Attributes
    ----------
    a, b : str
        Predictor (or account) names.
    estimate : float
        On the full data.
    low, high : float
        Percentile interval at the analysis' confidence level.
    support : float
        Fraction of valid replicates with ``|ρ_a| > |ρ_b|``.
    n_valid : int
        Replicates where both correlations are defined.
    """

    a: str
    b: str
    estimate: float
    low: float
    high: float
    support: float
    n_valid: int


@dataclass(frozen=True, eq=False)
class PredictorAnalysis:
    """Result of :func:`predictor_analysis`.

    Attributes
    ----------
    names : tuple of str
        Predictor names, in input order.
    rho : ndarray, float64, shape (P,)
        Spearman ρ of each predictor with the effect.
    low, high : ndarray, float64, shape (P,)
        Bootstrap percentile interval of ρ.
    boot_rho : ndarray, float64, shape (n_boot, P)
        Replicates (NaN where a resample made a predictor or the effect constant).
    n_obs, n_groups, n_boot : int
    confidence : float
    effect_name : str
    """

    names: tuple[str, ...]
    rho: np.ndarray
    low: np.ndarray
    high: np.ndarray
    boot_rho: np.ndarray
    n_obs: int
    n_groups: int
    n_boot: int
    confidence: float
    effect_name: str

    def _col(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            msg = f"unknown predictor {name!r}; have {self.names}"
            raise KeyError(msg) from None

    def difference(
        self, a: str | Sequence[str], b: str | Sequence[str]
    ) -> PairedDifference:
        """Paired bootstrap of ``|ρ_a| − |ρ_b|``.

        ``a`` and ``b`` may each be a group of predictors (an *account*): its score
        is then the largest ``|ρ|`` within the group, taken afresh in every
        replicate so that picking the best member is part of the resampling.
        """
        ga = [a] if isinstance(a, str) else list(a)
        gb = [b] if isinstance(b, str) else list(b)
        ia = [self._col(x) for x in ga]
        ib = [self._col(x) for x in gb]

        def score(r: np.ndarray, idx: list[int]) -> np.ndarray:
            v = np.abs(r[..., idx])
            ok = ~np.isnan(v).all(axis=-1)
            return np.where(
                ok, np.nanmax(np.where(np.isnan(v), -1.0, v), axis=-1), np.nan
            )

        d = score(self.boot_rho, ia) - score(self.boot_rho, ib)
        d = d[np.isfinite(d)]
        est = float(score(self.rho, ia) - score(self.rho, ib))
        q = (1.0 - self.confidence) / 2.0
        lo, hi = np.quantile(d, [q, 1.0 - q]) if d.size else (math.nan, math.nan)
        return PairedDifference(
            a="+".join(ga),
            b="+".join(gb),
            estimate=est,
            low=float(lo),
            high=float(hi),
            support=float(np.mean(d > 0)) if d.size else math.nan,
            n_valid=int(d.size),
        )

    def to_records(self) -> list[dict[str, Any]]:
        """One record per predictor: ρ, interval, valid replicates."""
        valid = np.sum(np.isfinite(self.boot_rho), axis=0)
        return [
            {
                "predictor": n,
                "effect": self.effect_name,
                "spearman_rho": float(self.rho[i]),
                "ci_low": float(self.low[i]),
                "ci_high": float(self.high[i]),
                "confidence": self.confidence,
                "n_obs": self.n_obs,
                "n_models": self.n_groups,
                "n_boot_valid": int(valid[i]),
            }
            for i, n in enumerate(self.names)
        ]

    def to_markdown(self) -> str:
        """Markdown table of the rank correlations."""
        pct = f"{self.confidence * 100:g} %"
        lines = [
            (
                f"Spearman ρ with {self.effect_name} over {self.n_obs} observations from "
                f"{self.n_groups} models; {pct} intervals from {self.n_boot} model-level "
                "bootstrap resamples."
            ),
            "",
            f"| predictor | ρ | {pct} interval |",
            "|---|---:|---|",
        ]
        for r in self.to_records():
            lines.append(
                f"| {r['predictor']} | {r['spearman_rho']:.3f} | "
                f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] |"
            )
        return "\n".join(lines) + "\n"


def _check_varies(v: np.ndarray, name: str) -> None:
    """A constant sample has no ranks to correlate: refuse it rather than return
    NaN."""
    if np.all(v == v[0]):
        msg = (
            f"{name} is constant ({v[0]:g} for all {v.size} observations): its rank "
            "correlation is undefined; leave it out of the analysis"
        )
        raise ValueError(msg)


def _group_index(groups: object, n: int) -> np.ndarray:
    """Model number (0 .. G−1) of every observation; at least 2 models."""
    g = np.arange(n) if groups is None else np.asarray(groups)
    if g.shape != (n,):
        msg = f"groups must have shape ({n},); got {g.shape}"
        raise ValueError(msg)
    inv: np.ndarray = np.unique(g, return_inverse=True)[1].reshape(-1)
    if inv.max() < 1:
        msg = "groups must contain at least 2 distinct models"
        raise ValueError(msg)
    return inv


def predictor_analysis(
    effect: object,
    predictors: Mapping[str, object],
    groups: object = None,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | int | None = None,
    effect_name: str = "effect",
) -> PredictorAnalysis:
    """Spearman ρ of each predictor with the effect, with model-level bootstrap CIs.

    Parameters
    ----------
    effect : array_like, shape (n,)
        Measured effect per observation (e.g. ΔFVU of a (model, block) ablation);
        not constant.
    predictors : mapping of str to array_like, shape (n,)
        Candidate predictors, finite, each taking at least two distinct values.
    groups : array_like, shape (n,), optional
        Model label of each observation; resampling draws whole models. Default:
        every observation is its own group.
    n_boot : int, default 2000
        Bootstrap replicates.
    confidence : float, default 0.95
        Level of the percentile intervals, in (0, 1).
    rng : Generator, int or None
        ``numpy.random.default_rng(rng)``.
    effect_name : str
        Used in tables and verdicts.

    Returns
    -------
    PredictorAnalysis

    Raises
    ------
    TypeError, ValueError
        Non-numeric or non-finite values, mismatched lengths, no predictors, a
        constant effect or predictor (the message names it), fewer than 2 groups,
        bad ``n_boot`` / ``confidence``.
    """
    y = _vector(effect, "effect")
    if not isinstance(predictors, Mapping) or not predictors:
        msg = "predictors must be a non-empty mapping of name to values"
        raise ValueError(msg)
    names = tuple(str(k) for k in predictors)
    cols = [_vector(v, f"predictors[{k!r}]", y.size) for k, v in predictors.items()]
    _check_varies(y, "effect")
    for k, c in zip(predictors, cols, strict=True):
        _check_varies(c, f"predictors[{k!r}]")
    inv = _group_index(groups, y.size)
    G = int(inv.max()) + 1
    n_boot = check_int("n_boot", n_boot, 1)
    confidence = check_real(
        "confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True
    )
    gen = as_generator("rng", rng)
    Y = np.column_stack([y, *cols])
    boot, lo, hi = _group_bootstrap(Y, inv, G, n_boot, confidence, gen)
    return PredictorAnalysis(
        names=names,
        rho=_rank_corr(Y),
        low=lo,
        high=hi,
        boot_rho=boot,
        n_obs=int(y.size),
        n_groups=G,
        n_boot=n_boot,
        confidence=float(confidence),
        effect_name=str(effect_name),
    )


def _group_bootstrap(
    Y: np.ndarray,
    inv: np.ndarray,
    G: int,
    n_boot: int,
    confidence: float,
    gen: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bootstrap ρ of each predictor column of ``Y`` (n, 1 + P) with the effect
    (column 0), resampling the ``G`` groups of ``inv`` (n,); returns the replicates
    (n_boot, P) and the percentile interval ends (P,)."""
    # Resampling whole models = integer weights (how often each model was drawn)
    # on the observations, so all replicates are evaluated at once.
    picks = gen.integers(0, G, size=(n_boot, G))
    counts = np.zeros((n_boot, G))
    np.add.at(counts, (np.arange(n_boot)[:, None], picks), 1.0)
    boot = _weighted_rank_corr(Y, counts[:, inv])
    q = (1.0 - confidence) / 2.0
    P = Y.shape[1] - 1
    lo = np.full(P, np.nan)
    hi = np.full(P, np.nan)
    for j in range(P):
        ok = np.isfinite(boot[:, j])
        if ok.any():
            lo[j], hi[j] = np.quantile(boot[ok, j], [q, 1.0 - q])
    return boot, lo, hi


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`predictor_verdict`.

    Attributes
    ----------
    outcome : str
        ``"better"`` (the leading account predicts better, the paired interval
        excludes 0), ``"undecided"`` (an association exists, but the interval of the
        difference includes 0), ``"no_association"`` (every interval of ρ includes
        0) or ``"too_few_models"``.
    text : str
        One neutral sentence for a report.
    leader, runner_up : str or None
        Accounts ordered by their best ``|ρ|`` on the full data.
    difference : PairedDifference or None
        ``leader − runner_up``.
    """

    outcome: str
    text: str
    leader: str | None
    runner_up: str | None
    difference: PairedDifference | None


def _best(an: PredictorAnalysis, members: Sequence[str]) -> tuple[float, str]:
    vals = [(abs(float(an.rho[an._col(m)])), m) for m in members]
    vals = [v for v in vals if math.isfinite(v[0])]
    return max(vals) if vals else (math.nan, "")


def _associated(an: PredictorAnalysis, members: Sequence[str]) -> bool:
    idx = [an._col(m) for m in members]
    return bool(np.any((an.low[idx] > 0) | (an.high[idx] < 0)))


def predictor_verdict(
    analysis: PredictorAnalysis,
    *,
    accounts: Mapping[str, Sequence[str]] | None = None,
    min_models: int = 5,
) -> Verdict:
    """State which account predicts the effect better, and how sure that is.

    Parameters
    ----------
    analysis : PredictorAnalysis
    accounts : mapping of str to sequence of str, optional
        Account name → its predictors, e.g. ``{"Schur": ["removed_mass"],
        "subspace": ["activity_weighted_size", "align_row"]}``; an account scores
        its best ``|ρ|`` (re-chosen in every bootstrap replicate). Default: every
        predictor is its own account.
    min_models : int, default 5
        Fewer models than this give ``"too_few_models"``.

    Returns
    -------
    Verdict
        Compares the two accounts with the largest best ``|ρ|`` by the paired
        bootstrap of their difference (:meth:`PredictorAnalysis.difference`).
    """
    if not isinstance(analysis, PredictorAnalysis):
        msg = f"analysis must be a PredictorAnalysis; got {type(analysis).__name__}"
        raise TypeError(msg)
    min_models = check_int("min_models", min_models, 2)
    acc = {n: [n] for n in analysis.names} if accounts is None else dict(accounts)
    for members in acc.values():
        for m in members:
            analysis._col(m)
    if len(acc) < 2 or any(not m for m in acc.values()):
        msg = "accounts must name at least 2 non-empty groups of predictors"
        raise ValueError(msg)
    eff, pct = analysis.effect_name, f"{analysis.confidence * 100:g} %"
    if analysis.n_groups < min_models:
        text = (
            f"Inconclusive: {analysis.n_groups} models, fewer than the {min_models} "
            "needed for a model-level bootstrap."
        )
        return Verdict("too_few_models", text, None, None, None)
    ranked = sorted(
        acc, key=lambda a: -np.nan_to_num(_best(analysis, acc[a])[0], nan=-1)
    )
    lead, run = ranked[0], ranked[1]
    if not any(_associated(analysis, m) for m in acc.values()):
        text = (
            f"Inconclusive: no candidate is rank-correlated with {eff} at the {pct} "
            "level (every interval of ρ includes 0)."
        )
        return Verdict("no_association", text, lead, run, None)
    d = analysis.difference(acc[lead], acc[run])
    (bl, ml), (br, mr) = _best(analysis, acc[lead]), _best(analysis, acc[run])
    detail = (
        f"best |ρ| {bl:.2f} ({ml}) vs {br:.2f} ({mr}), difference {d.estimate:.2f} "
        f"({pct} interval [{d.low:.2f}, {d.high:.2f}]; larger in "
        f"{d.support * 100:.1f} % of {d.n_valid} model resamples)"
    )
    if d.low > 0 and _associated(analysis, acc[lead]):
        text = f"{lead} predicts {eff} better than {run}: {detail}."
        return Verdict("better", text, lead, run, d)
    text = (
        f"Inconclusive between {lead} and {run}: {detail}; the data do not "
        f"separate them at the {pct} level."
    )
    return Verdict("undecided", text, lead, run, d)
