"""Fixed points (rnnschur.dynamics.fixed_points) against closed forms and SciPy."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.optimize

from rnnschur import make_task
from rnnschur.dynamics import (
    STATUS_NAMES,
    _identity_fixed_points,  # test-only route: the Newton core on a linear network
    fixed_points,
    sample_starts,
)


def _net(W, W_xh=None, b_h=None, **extra):
    n = W.shape[0]
    W_xh = np.zeros((n, 1)) if W_xh is None else W_xh
    return SimpleNamespace(W_xh=W_xh, W_hh=W, b_h=b_h, **extra)


def _random_net(n, gain, seed):
    rng = np.random.default_rng(seed)
    W = gain * rng.standard_normal((n, n)) / np.sqrt(n)
    return _net(W, rng.standard_normal((n, 2)), 0.3 * rng.standard_normal(n)), rng


def _jacobian(W, c, h, leak=1.0):
    J = leak * (1.0 - np.tanh(W @ h + c) ** 2)[:, None] * W
    return J + (1.0 - leak) * np.eye(W.shape[0])


def _sorted(ev):
    return ev[np.lexsort((-ev.imag, -ev.real, -np.abs(ev)))]


# --- closed forms ------------------------------------------------------------


@pytest.mark.parametrize("leak", [1.0, 0.3])
def test_linear_network_fixed_point_and_eigenvalues(leak):
    # identity activation: h* = (I − W)⁻¹ c, map Jacobian (1 − a) I + a W
    rng = np.random.default_rng(0)
    n = 7
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    W_xh = rng.standard_normal((n, 2))
    b = rng.standard_normal(n)
    x = np.array([0.5, -1.0])
    net = _net(W, W_xh, b, leak=leak)
    r = _identity_fixed_points(net, x, rng.uniform(-3, 3, (20, n)))
    c = W_xh @ x + b
    h_star = np.linalg.solve(np.eye(n) - W, c)
    assert r.h.shape == (1, n)
    assert r.is_fixed.all()
    assert r.count[0] == 20
    np.testing.assert_allclose(r.h[0], h_star, rtol=1e-12, atol=1e-12)
    expected = _sorted((1 - leak) + leak * np.linalg.eigvals(W))
    np.testing.assert_allclose(r.eigenvalues[0], expected, atol=1e-12)
    assert r.stable[0] == bool(np.all(np.abs(expected) < 1))
    # Newton on an affine F lands in one step (then one chord polish at most)
    assert r.start_iters.max() <= 2


def test_newton_converges_quadratically():
    rng = np.random.default_rng(1)
    n = 20
    W = 1.5 * np.linalg.qr(rng.standard_normal((n, n)))[0]
    r = fixed_points(_net(W), starts=rng.uniform(-1, 1, (50, n)), history=True)
    assert r.history is not None
    assert (r.start_status == "fixed").all()
    checked = 0
    for q in r.history:
        res = np.sqrt(2 * q[np.isfinite(q)])
        for a, b in itertools.pairwise(res):
            # final steps above rounding: r_{k+1} <= C r_k² with C = O(1)
            if a < 1e-2 and b > 1e-13:
                assert b <= 10.0 * a**2
                checked += 1
        assert res[-1] < 1e-14
    assert checked >= 40


def test_slow_point_is_reported_and_never_fixed():
    # 1-D past a saddle-node: tanh(2h − 0.6) − h has a ghost (a local minimum of
    # q > 0) where tanh²(2h − 0.6) = ½, i.e. h_s = (atanh(√½) + 0.6) / 2.
    h_s = (np.arctanh(np.sqrt(0.5)) + 0.6) / 2
    q_s = 0.5 * (np.sqrt(0.5) - h_s) ** 2
    net = _net(np.array([[2.0]]), b_h=np.array([-0.6]))
    r = fixed_points(net, starts=[[0.3], [0.74], [0.9], [-0.5]])
    assert list(r.start_status) == ["slow", "slow", "slow", "fixed"]
    assert r.summary()["slow"] == 1
    slow = ~r.is_fixed
    np.testing.assert_allclose(r.h[slow, 0], h_s, rtol=1e-10)
    np.testing.assert_allclose(r.q[slow], q_s, rtol=1e-10)
    fixed = r.h[r.is_fixed, 0]
    np.testing.assert_allclose(np.tanh(2 * fixed - 0.6), fixed, atol=1e-15)
    # embedded in 3-D with weak coupling: still a slow point, not a fixed one
    W = np.diag([2.0, 0.5, -0.7]) + 1e-3 * np.random.default_rng(0).random((3, 3))
    r3 = fixed_points(
        _net(W, b_h=np.array([-0.6, 0.1, 0.2])), starts=[[0.74, 0, 0], [0.5, 0.3, -0.3]]
    )
    assert (r3.start_status == "slow").all()
    assert r3.q.min() > 1e-4


# --- against an independent reference -----------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_matches_scipy_root(seed):
    net, rng = _random_net(6, 2.5, seed)
    x = rng.standard_normal(2)
    c = net.W_xh @ x + net.b_h
    starts = rng.uniform(-1, 1, (200, 6))
    r = fixed_points(net, x, starts)

    def F(h):
        return np.tanh(net.W_hh @ h + c) - h

    def J(h):
        return _jacobian(net.W_hh, c, h) - np.eye(6)

    roots = []
    for s in starts:
        sol = scipy.optimize.root(F, s, jac=J, method="hybr", tol=1e-14)
        if sol.success and np.linalg.norm(F(sol.x)) < 1e-12:
            roots.append(sol.x)
    assert len(roots) > 50
    # every root SciPy finds from these starts is among ours, and every point of
    # ours is a root
    d = np.max(np.abs(np.asarray(roots)[:, None, :] - r.h[None, r.is_fixed]), axis=2)
    assert d.min(axis=1).max() < 1e-9
    for h in r.h[r.is_fixed]:
        assert np.linalg.norm(F(h)) < 1e-14


def test_eigenvalues_and_eigenvectors_match_lapack():
    net, rng = _random_net(12, 3.0, 3)
    net.leak = 0.6
    c = net.b_h
    r = fixed_points(net, starts=rng.uniform(-1, 1, (64, 12)))
    rv = fixed_points(net, starts=r.starts, eigenvectors=True)
    assert r.h.shape[0] >= 5
    assert r.stable.any()
    assert (~r.stable).any()
    np.testing.assert_allclose(rv.h, r.h)
    for p in range(r.h.shape[0]):
        A = _jacobian(net.W_hh, c, r.h[p], leak=0.6)
        ref = _sorted(np.linalg.eigvals(A))
        np.testing.assert_allclose(r.eigenvalues[p], ref, atol=1e-12)
        np.testing.assert_allclose(rv.eigenvalues[p], ref, atol=1e-12)
        vl, vr, lam = (
            rv.left_eigenvectors[p],
            rv.right_eigenvectors[p],
            rv.eigenvalues[p],
        )
        np.testing.assert_allclose(A @ vr, vr * lam, atol=1e-11)
        np.testing.assert_allclose(
            vl.conj().T @ A, lam[:, None] * vl.conj().T, atol=1e-11
        )
    assert np.array_equal(r.stable, np.all(np.abs(r.eigenvalues) < 1, axis=1))
    assert np.array_equal(r.n_unstable, np.sum(np.abs(r.eigenvalues) > 1, axis=1))


def test_leak_changes_stability_not_the_points():
    net, rng = _random_net(10, 2.0, 3)
    starts = rng.uniform(-1, 1, (100, 10))
    r1 = fixed_points(net, starts=starts)
    net.leak = 0.25
    r2 = fixed_points(net, starts=starts)
    np.testing.assert_array_equal(r1.h, r2.h)
    for ev2, ev1 in zip(r2.eigenvalues, r1.eigenvalues, strict=True):
        np.testing.assert_allclose(ev2, _sorted(0.75 + 0.25 * ev1), atol=1e-12)
    assert (r1.n_unstable >= r2.n_unstable).all()


# --- starts, duck typing, threads ---------------------------------------------


def test_default_starts_from_task_and_constant_input():
    rng = np.random.default_rng(0)
    n = 16
    W = 1.2 * np.linalg.qr(rng.standard_normal((n, n)))[0]
    W_xh = rng.standard_normal((n, 3))
    with_task = _net(W, W_xh, task=make_task("flipflop"))
    r = fixed_points(with_task, n_starts=100, rng=1)
    assert r.starts.shape == (100, n)
    assert r.n_fixed >= 1
    # the same seed gives the same starts; a task-less network uses x*
    np.testing.assert_array_equal(sample_starts(with_task, 100, rng=1), r.starts)
    plain = _net(W, W_xh)
    s = sample_starts(plain, 50, x_star=np.ones(3), noise=0.0, rng=2)
    assert s.shape == (50, n)
    assert np.abs(s).max() < 1  # noise-free states of a tanh network
    x = make_task("flipflop").sample(8, rng)[0]
    r_in = fixed_points(plain, inputs=x, n_starts=64, rng=3)
    assert r_in.starts.shape == (64, n)


def test_threads_do_not_change_results():
    net, rng = _random_net(20, 2.0, 5)
    starts = rng.uniform(-1, 1, (300, 20))
    r1 = fixed_points(net, starts=starts, n_threads=1)
    r2 = fixed_points(net, starts=starts, n_threads=3)
    np.testing.assert_array_equal(r1.final_h, r2.final_h)
    np.testing.assert_array_equal(r1.start_status, r2.start_status)


def test_statuses_per_start_and_bookkeeping():
    net, rng = _random_net(8, 2.0, 11)
    r = fixed_points(net, starts=rng.uniform(-1, 1, (40, 8)), max_iter=1)
    assert set(r.start_status) <= set(STATUS_NAMES)
    assert (r.start_status == "not_converged").any()  # no exception for the batch
    assert (r.start_point[r.start_status == "not_converged"] == -1).all()
    r0 = fixed_points(net, starts=rng.uniform(-1, 1, (5, 8)), max_iter=0)
    assert (r0.start_status == "not_converged").all()
    assert r0.h.shape == (0, 8)
    assert r0.eigenvalues.shape == (0, 8)
    full = fixed_points(net, starts=r.starts)
    assert full.count.sum() == (full.start_point >= 0).sum()
    for i, p in enumerate(full.start_point):
        if p >= 0:
            assert np.max(np.abs(full.final_h[i] - full.h[p])) <= 1e-6


# --- bad input -----------------------------------------------------------------


def test_bad_input():
    net, _ = _random_net(4, 1.0, 0)
    bad = _net(net.W_hh.copy(), net.W_xh)
    bad.W_hh[1, 2] = np.nan
    with pytest.raises(ValueError, match="W_hh"):
        fixed_points(bad, starts=np.zeros((1, 4)))
    with pytest.raises(ValueError, match="starts"):
        fixed_points(net, starts=np.zeros((3, 5)))
    with pytest.raises(ValueError, match="starts"):
        fixed_points(net, starts=np.full((1, 4), np.inf))
    with pytest.raises(ValueError, match="x_star"):
        fixed_points(net, np.zeros(3))
    with pytest.raises(TypeError, match="W_hh"):
        fixed_points(SimpleNamespace(W_xh=np.zeros((4, 1))))
    with pytest.raises(ValueError, match="leak"):
        fixed_points(_net(net.W_hh, leak=1.5), starts=np.zeros((1, 4)))
    with pytest.raises(ValueError, match="tol"):
        fixed_points(net, starts=np.zeros((1, 4)), tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        fixed_points(net, starts=np.zeros((1, 4)), max_iter=-1)
    with pytest.raises(TypeError, match="eigenvectors"):
        fixed_points(net, starts=np.zeros((1, 4)), eigenvectors="yes")
    with pytest.raises(ValueError, match="not both"):
        fixed_points(net, starts=np.zeros((1, 4)), inputs=np.zeros((2, 2, 1)))
    with pytest.raises(ValueError, match="inputs"):
        fixed_points(net, inputs=np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="n_threads"):
        fixed_points(net, starts=np.zeros((1, 4)), n_threads=0)
