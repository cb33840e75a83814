"""Hypothesis properties of rnnschur.dynamics.fixed_points on random networks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnschur.dynamics import fixed_points


@st.composite
def networks(draw):
    n = draw(st.integers(1, 10))
    gain = draw(st.floats(0.2, 4.0))
    leak = draw(st.sampled_from([1.0, 0.5, 0.1]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    W = gain * rng.standard_normal((n, n)) / np.sqrt(n)
    # adversarial: some exactly saturated or exactly linear units
    if draw(st.booleans()):
        W[0] *= 50.0
    net = SimpleNamespace(
        W_xh=rng.standard_normal((n, 2)), W_hh=W, b_h=rng.standard_normal(n), leak=leak
    )
    starts = rng.uniform(-1.5, 1.5, (draw(st.integers(1, 40)), n))
    return net, starts


@settings(max_examples=60, deadline=None)
@given(networks())
def test_reported_points_are_what_they_claim(case):
    net, starts = case
    r = fixed_points(net, starts=starts)
    W, c, a = net.W_hh, net.b_h, net.leak
    n = W.shape[0]
    for p in range(r.h.shape[0]):
        h = r.h[p]
        q = 0.5 * np.sum((np.tanh(W @ h + c) - h) ** 2)
        if r.is_fixed[p]:
            assert r.q[p] < r.tol
            assert q < 1e-18
        else:
            assert r.q[p] >= r.tol
        J = a * (1 - np.tanh(W @ h + c) ** 2)[:, None] * W + (1 - a) * np.eye(n)
        ref = np.linalg.eigvals(J)
        ref = ref[np.lexsort((-ref.imag, -ref.real, -np.abs(ref)))]
        scale = 1.0 + np.abs(J).sum(axis=1).max()
        np.testing.assert_allclose(r.eigenvalues[p], ref, atol=1e-9 * scale)
    assert np.array_equal(r.stable, np.all(np.abs(r.eigenvalues) < 1, axis=1))
    # every start has a status; converged ones point at their deduplicated point
    assert r.start_status.shape == (starts.shape[0],)
    ok = np.isin(r.start_status, ("fixed", "slow"))
    assert np.array_equal(ok, r.start_point >= 0)
    # fixed points of tanh lie in the cube (closed in floating point: tanh saturates)
    assert np.all(np.abs(r.h[r.is_fixed]) <= 1)
