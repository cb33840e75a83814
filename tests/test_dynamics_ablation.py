"""Continuation of fixed points into Schur-ablated networks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rnnschur import ablate, ordered_schur, schur_split
from rnnschur.dynamics import fixed_points
from rnnschur.dynamics_ablation import continue_fixed_points


def _fold_net():
    # Already an ordered Schur form (eigenvalues 2, 0.5). With alpha = 0.9, R = {2}
    # and the C→R coupling is W[0, 1] = 1: h2* ≈ 0.9 shifts unit 1 by +0.9 and
    # cancels its bias, leaving it bistable (three fixed points). Removing the
    # coupling leaves tanh(2 h1 − 0.9) = h1, past the saddle-node: one fixed point.
    W = np.array([[2.0, 1.0], [0.0, 0.5]])
    return SimpleNamespace(W_xh=np.zeros((2, 1)), W_hh=W, b_h=np.array([-0.9, 1.0]))


def test_fold_under_ablation():
    net = _fold_net()
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9)), -1)
    fp = fixed_points(net, starts=grid.reshape(-1, 2))
    assert fp.n_fixed == 3
    assert fp.n_stable == 2
    cont = continue_fixed_points(net, fp, alpha=0.9, n_starts=64, rng=0)
    k = cont.subsets.index("CR")
    # the upper stable point and the saddle annihilate; the lower one survives
    upper = fp.h[:, 0] > 0.5
    lower = fp.h[:, 0] < -0.5
    assert not cont.survived[k, upper[fp.is_fixed]].any()
    assert cont.survived[k, lower[fp.is_fixed]].all()
    assert cont.survived[k].sum() == 1
    vanished = ~cont.survived[k]
    assert np.all(
        (cont.vanished_at[k, vanished] >= 0) & (cont.vanished_at[k, vanished] < 1)
    )
    assert np.isnan(cont.displacement[k, vanished]).all()
    # the survivor is a fixed point of the ablated matrix, which ablate() builds
    form = ordered_schur(net.W_hh)
    W_abl = ablate(form, schur_split(form, 0.9), [("CR",)]).W[0]
    h = cont.h[k, cont.survived[k]][0]
    np.testing.assert_allclose(np.tanh(W_abl @ h + net.b_h), h, atol=1e-14)
    # the fresh search agrees: one fixed point, nothing new
    assert cont.fresh is not None
    assert cont.fresh[k].n_fixed == 1
    assert cont.new[k].size == 0
    # subsets that remove nothing (RR and CC are empty here) keep every point
    for label in ("none", "RR", "CC", "RR+CC"):
        j = cont.subsets.index(label)
        assert cont.survived[j].all()
        assert np.nanmax(cont.displacement[j]) < 1e-12
        assert not cont.changed_stability[j].any()


def test_records_and_stability_bookkeeping():
    rng = np.random.default_rng(4)
    n = 10
    W = 2.0 * rng.standard_normal((n, n)) / np.sqrt(n)
    net = SimpleNamespace(
        W_xh=np.zeros((n, 1)), W_hh=W, b_h=0.2 * rng.standard_normal(n)
    )
    fp = fixed_points(net, starts=rng.uniform(-1, 1, (100, n)))
    cont = continue_fixed_points(
        net, fp, subsets=[(), ("CR",), ("RR", "CR", "CC")], rng=1
    )
    P = fp.n_fixed
    assert cont.survived.shape == (3, P)
    rows = cont.to_records()
    assert len(rows) == 3 * P + sum(len(x) for x in cont.new)
    for k in range(3):
        for p in np.flatnonzero(cont.survived[k]):
            h = cont.h[k, p]
            assert np.isfinite(h).all()
            assert cont.n_unstable_after[k, p] >= 0
        assert (cont.n_unstable_after[k, ~cont.survived[k]] == -1).all()
    np.testing.assert_array_equal(cont.changed_stability[0], np.zeros(P, dtype=bool))
    outcomes = {r["outcome"] for r in rows}
    assert outcomes <= {"survived", "vanished", "new"}


def test_bad_input():
    net = _fold_net()
    fp = fixed_points(net, starts=np.zeros((1, 2)))
    with pytest.raises(TypeError, match="fp"):
        continue_fixed_points(net, object())
    with pytest.raises(ValueError, match="alpha"):
        continue_fixed_points(net, fp, alpha=1.5)
    wide = SimpleNamespace(W_xh=np.zeros((3, 1)), W_hh=np.eye(3))
    with pytest.raises(ValueError, match="width"):
        continue_fixed_points(wide, fp)
    with pytest.raises(ValueError, match="unknown"):
        continue_fixed_points(net, fp, subsets=[("XY",)])
