"""Slow: the fixed-point structure of a trained 3-bit flip-flop network."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import rnnschur
from rnnschur.dynamics import fixed_points


def _train_flipflop():
    # The one place this test touches the training API (moving in issue 9).
    from rnnschur import train

    return train(
        rnnschur.make_task("flipflop"), "dense_orthogonal", 64, seed=0, progress=False
    )


@pytest.mark.slow
def test_three_bit_flipflop_has_eight_stable_points_and_saddles():
    model = _train_flipflop()
    r = fixed_points(model, rng=0)
    stable = r.is_fixed & r.stable
    assert stable.sum() == 8
    assert r.q[stable].max() < 1e-20
    # the 8 attractors are the 8 memories: the readout's signs are all of {±1}³
    y = r.h[stable] @ np.asarray(model.W_hy, dtype=np.float64).T
    assert np.abs(y).min() > 0.5
    corners = {tuple(int(s) for s in np.sign(v)) for v in y}
    assert corners == set(itertools.product((-1, 1), repeat=3))
    # saddles between them: fixed points with one unstable mode
    saddles = r.h[r.is_fixed & (r.n_unstable == 1)]
    assert saddles.shape[0] >= 6
    assert r.q[r.is_fixed].max() < 1e-20
    assert not (r.start_status == "nonfinite").any()
