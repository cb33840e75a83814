"""Predictor analysis (rnnschur.predictors): Spearman, model bootstrap, verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from rnnschur.predictors import predictor_analysis, predictor_verdict, spearman


def _synthetic(rng, n_models=30, n_blocks=3, noise=0.3, signal=True):
    n = n_models * n_blocks
    groups = np.repeat(np.arange(n_models), n_blocks)
    mass = rng.uniform(0, 1, n)
    size = rng.uniform(0, 1, n)
    align = rng.uniform(0, 1, n)
    effect = (size if signal else 0.0) + noise * rng.standard_normal(n)
    preds = {"removed_mass": mass, "activity_weighted_size": size, "align_pc": align}
    return effect, preds, groups


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_scipy_including_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, 40).astype(float)  # many ties
    y = x + rng.integers(0, 3, 40)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-14)
    z = rng.standard_normal(17)
    w = rng.standard_normal(17)
    assert spearman(z, w) == pytest.approx(spearmanr(z, w).statistic, abs=1e-14)
    assert np.isnan(spearman(np.ones(5), z[:5]))


def test_known_predictor_is_found_and_declared_better():
    rng = np.random.default_rng(0)
    effect, preds, groups = _synthetic(rng)
    an = predictor_analysis(
        effect, preds, groups, n_boot=1000, rng=1, effect_name="ΔFVU"
    )
    i = an.names.index("activity_weighted_size")
    assert an.rho[i] > 0.6 and an.low[i] > 0.4
    assert an.rho[i] == pytest.approx(
        spearmanr(effect, preds["activity_weighted_size"])[0]
    )
    v = predictor_verdict(
        an,
        accounts={
            "Schur account": ["removed_mass"],
            "subspace account": ["activity_weighted_size", "align_pc"],
        },
    )
    assert v.outcome == "better" and v.leader == "subspace account"
    assert v.difference is not None and v.difference.low > 0
    assert v.text.startswith("subspace account predicts ΔFVU better than Schur account")
    v1 = predictor_verdict(an)
    assert v1.outcome == "better" and v1.leader == "activity_weighted_size"
    assert "ΔFVU" in an.to_markdown() and len(an.to_records()) == 3


def test_null_effect_is_inconclusive_in_most_datasets():
    # Independent noise: each 95 % interval should cover 0 about 95 % of the time,
    # and a "better" verdict (which needs an interval excluding 0) must be rare.
    covered, better = 0, 0
    trials = 40
    for seed in range(trials):
        rng = np.random.default_rng(1000 + seed)
        effect, preds, groups = _synthetic(rng, signal=False)
        an = predictor_analysis(effect, preds, groups, n_boot=400, rng=seed)
        covered += int(np.sum((an.low <= 0) & (an.high >= 0)))
        better += predictor_verdict(an).outcome == "better"
    assert covered / (3 * trials) >= 0.85
    assert better <= 0.15 * trials


def test_equal_predictors_are_undecided():
    # Two predictors that are noisy copies of the same driver: both correlate,
    # neither is better.
    rng = np.random.default_rng(3)
    n = 120
    drive = rng.uniform(0, 1, n)
    a = drive + 0.05 * rng.standard_normal(n)
    b = drive + 0.05 * rng.standard_normal(n)
    effect = drive + 0.2 * rng.standard_normal(n)
    an = predictor_analysis(
        effect, {"a": a, "b": b}, np.repeat(np.arange(40), 3), rng=0
    )
    v = predictor_verdict(an)
    assert v.outcome == "undecided"
    assert v.text.startswith("Inconclusive between")
    assert v.difference is not None and v.difference.low <= 0 <= v.difference.high


def test_model_bootstrap_is_wider_than_row_bootstrap_for_duplicated_blocks():
    # Each model contributes 3 identical observations: resampling rows would treat
    # them as independent and give too narrow an interval.
    rng = np.random.default_rng(5)
    m = 12
    x = rng.standard_normal(m)
    y = 0.5 * x + rng.standard_normal(m)
    X, Y, g = np.repeat(x, 3), np.repeat(y, 3), np.repeat(np.arange(m), 3)
    by_model = predictor_analysis(Y, {"x": X}, g, n_boot=2000, rng=0)
    by_row = predictor_analysis(Y, {"x": X}, None, n_boot=2000, rng=0)
    assert by_model.n_groups == m and by_row.n_groups == 3 * m
    w_model = by_model.high[0] - by_model.low[0]
    w_row = by_row.high[0] - by_row.low[0]
    assert w_model > 1.3 * w_row


def test_too_few_models_and_bad_input():
    rng = np.random.default_rng(0)
    effect, preds, groups = _synthetic(rng, n_models=3)
    an = predictor_analysis(effect, preds, groups, n_boot=50, rng=0)
    v = predictor_verdict(an)
    assert v.outcome == "too_few_models" and v.text.startswith("Inconclusive")
    with pytest.raises(ValueError, match="one per observation"):
        predictor_analysis(effect, {"a": effect[:-1]}, groups)
    with pytest.raises(ValueError, match="finite"):
        predictor_analysis(np.full(9, np.nan), preds, groups)
    with pytest.raises(ValueError, match="non-empty mapping"):
        predictor_analysis(effect, {}, groups)
    with pytest.raises(ValueError, match="2 distinct"):
        predictor_analysis(effect, preds, np.zeros(9))
    with pytest.raises(ValueError, match="confidence"):
        predictor_analysis(effect, preds, groups, confidence=1.0)
    with pytest.raises(TypeError, match="n_boot"):
        predictor_analysis(effect, preds, groups, n_boot=10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"predictors\['flat'\] is constant"):
        predictor_analysis(effect, {**preds, "flat": np.zeros(9)}, groups)
    with pytest.raises(ValueError, match="effect is constant"):
        predictor_analysis(np.full(9, 0.25), preds, groups)
    with pytest.raises(KeyError, match="unknown predictor"):
        predictor_verdict(an, accounts={"a": ["nope"], "b": ["align_pc"]})
    with pytest.raises(ValueError, match="at least 2"):
        predictor_verdict(an, accounts={"a": ["align_pc"]})


def test_weighted_bootstrap_equals_explicit_resampling():
    # The vectorised replicates equal Spearman on explicitly concatenated resamples.
    from rnnschur import predictors as pr

    rng = np.random.default_rng(9)
    n_models, n_blocks = 7, 3
    effect, preds, groups = _synthetic(rng, n_models=n_models, n_blocks=n_blocks)
    preds["ties"] = np.round(preds["align_pc"] * 3)
    Y = np.column_stack([effect, *preds.values()])
    picks = rng.integers(0, n_models, size=(200, n_models))
    counts = np.stack([np.bincount(p, minlength=n_models) for p in picks])
    fast = pr._weighted_rank_corr(Y, counts[:, groups].astype(float))
    for r in range(200):
        idx = np.concatenate([np.flatnonzero(groups == k) for k in picks[r]])
        ref = [spearmanr(Y[idx, 0], Y[idx, j]).statistic for j in range(1, Y.shape[1])]
        np.testing.assert_allclose(fast[r], ref, rtol=0, atol=1e-12)
