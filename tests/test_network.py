"""rnnschur.Network: validation, rollout/loss against NumPy references, the leak."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import naive_rnn
from rnnschur import Network


def make_net(rng, nx=3, nh=7, ny=2, dtype=np.float64, h0=False, leak=1.0, scale=1.0):
    return Network(
        W_xh=(rng.standard_normal((nh, nx)) * scale).astype(dtype),
        W_hh=(rng.standard_normal((nh, nh)) * scale / np.sqrt(nh)).astype(dtype),
        W_hy=rng.standard_normal((ny, nh)).astype(dtype),
        b_h=(0.3 * rng.standard_normal(nh)).astype(dtype),
        b_y=(0.3 * rng.standard_normal(ny)).astype(dtype),
        h0=(0.5 * rng.standard_normal(nh)).astype(dtype) if h0 else None,
        leak=leak,
    )


def leaky_loop(net, x, W_hh=None):
    """Independent float64 reference: one sequence, one time step at a time."""
    W = np.asarray(net.W_hh if W_hh is None else W_hh, np.float64)
    a = net.leak
    T, B, _ = x.shape
    y = np.zeros((T, B, net.n_outputs))
    for b in range(B):
        h = np.zeros(net.n_hidden) if net.h0 is None else net.h0.astype(np.float64)
        for t in range(T):
            pre = net.W_xh.astype(np.float64) @ x[t, b] + W @ h + net.b_h
            h = (1 - a) * h + a * np.tanh(pre)
            y[t, b] = net.W_hy.astype(np.float64) @ h + net.b_y
    return y


# ------------------------------------------------------------------- validation


def test_fields_are_read_only_copies(rng):
    W = rng.standard_normal((4, 4))
    net = Network(W_xh=np.ones((4, 2)), W_hh=W, W_hy=np.ones((1, 4)))
    W[0, 0] = 99.0
    assert net.W_hh[0, 0] != 99.0
    with pytest.raises(ValueError, match="read-only"):
        net.W_hh[0, 0] = 1.0
    assert net.b_h.shape == (4,) and not net.b_h.any()
    assert net.b_y.shape == (1,) and net.dtype == np.float64
    assert (net.n_inputs, net.n_hidden, net.n_outputs) == (2, 4, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.leak = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        ({"W_hh": np.ones((4, 3))}, ValueError, "W_hh must be square"),
        ({"W_xh": np.ones((5, 2))}, ValueError, "W_xh must have shape"),
        ({"W_hy": np.ones((1, 5))}, ValueError, "W_hy must have shape"),
        ({"b_h": np.ones(3)}, ValueError, "b_h must have shape"),
        ({"b_y": np.ones((1, 1))}, ValueError, "b_y must be 1-D"),
        ({"h0": np.ones(5)}, ValueError, "h0 must have shape"),
        ({"W_hh": np.full((4, 4), np.nan)}, ValueError, "W_hh contains NaN"),
        ({"b_y": np.array([np.inf])}, ValueError, "b_y contains NaN"),
        ({"W_hh": np.ones((4, 4), np.int64)}, TypeError, "W_hh must be a float32"),
        ({"W_xh": np.ones((4, 2), np.float16)}, TypeError, "W_xh must be a float32"),
        ({"W_hy": np.ones((1, 4), np.float32)}, TypeError, "W_hy has dtype float32"),
        ({"W_hh": None}, TypeError, "W_hh is required"),
        ({"leak": 0.0}, ValueError, "leak must be in"),
        ({"leak": 1.5}, ValueError, "leak must be in"),
        ({"leak": float("nan")}, ValueError, "leak must be in"),
        ({"leak": True}, TypeError, "leak must be a real"),
        ({"leak": "1"}, TypeError, "leak must be a real"),
        ({"batch_first": 1}, TypeError, "batch_first must be a bool"),
        ({"W_xh": np.ones((4, 0))}, ValueError, "sizes must be >= 1"),
        ({"W_hh": np.ma.masked_array(np.ones((4, 4)))}, TypeError, "masked"),
    ],
)
def test_validation_names_the_field(change, exc, match):
    kw = {"W_xh": np.ones((4, 2)), "W_hh": np.eye(4), "W_hy": np.ones((1, 4))}
    kw.update(change)
    with pytest.raises(exc, match=match):
        Network(**kw)


# -------------------------------------------------------------------- rollout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h0", [False, True])
def test_rollout_matches_reference(rng, dtype, h0):
    net = make_net(rng, dtype=dtype, h0=h0)
    x = rng.standard_normal((9, 5, 3)).astype(dtype)
    y, h = net.rollout(x, return_hidden=True)
    y_ref, h_ref = naive_rnn.rollout(
        net.W_xh, net.W_hh, net.W_hy, x, net.b_h, net.b_y, net.h0
    )
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert y.dtype == dtype
    np.testing.assert_allclose(y, y_ref, atol=tol)
    np.testing.assert_allclose(h, h_ref, atol=tol)
    np.testing.assert_allclose(y, leaky_loop(net, x.astype(np.float64)), atol=tol)


def test_rollout_batch_first_and_stack(rng):
    net = make_net(rng, h0=True)
    x = rng.standard_normal((9, 5, 3))
    Ws = np.stack([net.W_hh, 0.5 * net.W_hh, -net.W_hh])
    y_tm = net.rollout(x, W_hh=Ws)
    assert y_tm.shape == (3, 9, 5, 2)
    for k in range(3):
        np.testing.assert_allclose(y_tm[k], leaky_loop(net, x, Ws[k]), atol=1e-12)
    bf = dataclasses.replace(net, batch_first=True)
    y_bf = bf.rollout(np.swapaxes(x, 0, 1), W_hh=Ws)
    assert y_bf.shape == (3, 5, 9, 2)
    np.testing.assert_array_equal(np.swapaxes(y_bf, 1, 2), y_tm)
    y_tm2 = bf.rollout(x, batch_first=False)
    np.testing.assert_array_equal(y_tm2, y_tm[0])


def test_rollout_input_errors(rng):
    net = make_net(rng)
    with pytest.raises(ValueError, match="x must be 3-D"):
        net.rollout(np.ones((4, 3)))
    with pytest.raises(TypeError, match="x must be a float32"):
        net.rollout(np.ones((4, 2, 3), np.int32))
    with pytest.raises(ValueError, match="x contains NaN"):
        net.rollout(np.full((4, 2, 3), np.nan))
    with pytest.raises(ValueError, match="W_hh must have shape"):
        net.rollout(np.ones((4, 2, 3)), W_hh=np.eye(3))
    with pytest.raises(ValueError, match="W_hh contains NaN"):
        net.rollout(np.ones((4, 2, 3)), W_hh=np.full((7, 7), np.nan))
    with pytest.raises(TypeError, match="batch_first must be None or a bool"):
        net.rollout(np.ones((4, 2, 3)), batch_first="yes")
    with pytest.raises(ValueError, match=r"x has shape \(4, 2, 5\), expected Nx"):
        net.rollout(np.ones((4, 2, 5)))


@pytest.mark.parametrize("leak", [1.0, 0.3])
def test_loss_matches_masked_mse(rng, leak):
    net = make_net(rng, leak=leak, h0=True)
    x = rng.standard_normal((6, 4, 3))
    y = rng.standard_normal((6, 4, 2))
    mask = rng.random((6, 4, 1)) < 0.5
    mask[0, 0, 0] = True
    y_hat = leaky_loop(net, x)
    m = np.broadcast_to(mask, y.shape)
    want = ((y_hat - y) ** 2)[m].mean()
    assert net.loss(x, y, mask) == pytest.approx(want, rel=1e-12)
    assert net.loss(x, y) == pytest.approx(((y_hat - y) ** 2).mean(), rel=1e-12)
    assert net.loss(x, y, mask.astype(np.int8)) == pytest.approx(want, rel=1e-12)
    bf = net.loss(
        np.swapaxes(x, 0, 1),
        np.swapaxes(y, 0, 1),
        np.swapaxes(mask, 0, 1),
        batch_first=True,
    )
    assert bf == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="mask selects no entries"):
        net.loss(x, y, np.zeros_like(mask))
    with pytest.raises(ValueError, match="y must have shape"):
        net.loss(x, y[:, :, :1])
    with pytest.raises(TypeError, match="mask must be bool"):
        net.loss(x, y, mask.astype(np.float64))
    with pytest.raises(ValueError, match="y contains NaN"):
        net.loss(x, np.full_like(y, np.nan))


# ----------------------------------------------------------------------- leak


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_rollout_matches_loop(rng, dtype):
    net = make_net(rng, dtype=dtype, leak=0.2, h0=True, scale=2.0)
    x = rng.standard_normal((15, 6, 3)).astype(dtype)
    Ws = np.stack([net.W_hh, 1.5 * net.W_hh]).astype(dtype)
    y, h = net.rollout(x, W_hh=Ws, return_hidden=True)
    assert y.dtype == dtype and y.shape == (2, 15, 6, 2) and h.shape == (2, 15, 6, 7)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for k in range(2):
        np.testing.assert_allclose(
            y[k], leaky_loop(net, x.astype(float), Ws[k]), atol=tol
        )
    # float32 network with float64 inputs works in float64, like the core
    y64 = net.rollout(x.astype(np.float64))
    assert y64.dtype == np.float64


def test_leak_tends_to_the_core(rng):
    """leak -> 1 runs the NumPy path and converges to the compiled core's result."""
    net = make_net(rng, h0=True)
    x = rng.standard_normal((12, 4, 3))
    near = dataclasses.replace(net, leak=1.0 - 1e-9)
    assert np.abs(near.rollout(x) - net.rollout(x)).max() < 1e-7


def test_leaky_one_step_jacobian_is_the_documented_map(rng):
    """Finite differences of h_1(h_0): (1-a) I + a diag(1 - tanh²) W_hh, and W_eff at 0."""
    a = 0.35
    net = make_net(rng, leak=a)
    x = rng.standard_normal((1, 1, 3))

    def step(h0, bias=True, inp=x):
        n = dataclasses.replace(net, h0=h0, b_h=net.b_h if bias else None)
        return n.rollout(inp, return_hidden=True)[1][0, 0]

    h = 0.3 * rng.standard_normal(7)
    eps = 1e-6
    J = np.empty((7, 7))
    for j in range(7):
        e = np.zeros(7)
        e[j] = eps
        J[:, j] = (step(h + e) - step(h - e)) / (2 * eps)
    pre = net.W_xh @ x[0, 0] + net.W_hh @ h + net.b_h
    want = (1 - a) * np.eye(7) + a * (1 - np.tanh(pre) ** 2)[:, None] * net.W_hh
    np.testing.assert_allclose(J, want, atol=1e-8)
    zero = np.zeros((1, 1, 3))
    J0 = np.empty((7, 7))
    for j in range(7):
        e = np.zeros(7)
        e[j] = eps
        J0[:, j] = (step(e, False, zero) - step(-e, False, zero)) / (2 * eps)
    np.testing.assert_allclose(J0, net.effective_recurrence(), atol=1e-8)


def test_effective_recurrence_round_trip_and_spectrum(rng):
    net = make_net(rng, leak=0.25)
    W_eff = net.effective_recurrence()
    np.testing.assert_allclose(
        np.sort_complex(np.linalg.eigvals(W_eff)),
        np.sort_complex(0.75 + 0.25 * np.linalg.eigvals(net.W_hh)),
        atol=1e-12,
    )
    np.testing.assert_array_equal(net.recurrence_from_effective(W_eff), net.W_hh)
    other = W_eff + 0.01 * np.triu(np.ones((7, 7)), 1)
    np.testing.assert_allclose(
        net.recurrence_from_effective(other),
        (other - 0.75 * np.eye(7)) / 0.25,
        atol=1e-13,
    )
    stack = np.stack([W_eff, 2 * W_eff])
    back = net.recurrence_from_effective(stack)
    np.testing.assert_allclose(back[0], net.W_hh, atol=1e-14)
    plain = make_net(rng)
    assert np.array_equal(plain.effective_recurrence(), plain.W_hh)
    assert np.array_equal(plain.recurrence_from_effective(plain.W_hh), plain.W_hh)


@given(
    seed=st.integers(0, 2**32 - 1),
    leak=st.floats(0.01, 1.0),
    T=st.integers(0, 6),
    B=st.integers(0, 3),
)
def test_leaky_rollout_property(seed, leak, T, B):
    rng = np.random.default_rng(seed)
    net = make_net(rng, nx=2, nh=4, ny=2, leak=leak, h0=bool(seed % 2), scale=3.0)
    x = rng.standard_normal((T, B, 2))
    y = net.rollout(x)
    assert y.shape == (T, B, 2)
    np.testing.assert_allclose(y, leaky_loop(net, x), atol=1e-12)


def test_leaky_overflow_raises(rng):
    net = Network(
        W_xh=np.ones((2, 1)),
        W_hh=np.eye(2),
        W_hy=np.full((1, 2), 1e308),
        b_y=np.array([1e308]),
        leak=0.5,
    )
    with pytest.raises(ValueError, match="overflow"):
        net.rollout(np.ones((3, 1, 1)))
