"""diagnose() against a straightforward NumPy/SciPy/LAPACK computation of the same table."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import naive_rnn
import naive_schur
import rnnschur.network as network_mod
from rnnschur import Network, diagnose

SUBSETS = [
    (),
    ("RR",),
    ("CR",),
    ("CC",),
    ("RR", "CR"),
    ("RR", "CC"),
    ("CR", "CC"),
    ("RR", "CR", "CC"),
]


def reference_table(net, x, y, mask=None, alpha=0.9, rollout=None):
    """The 8-subset table by SciPy Schur + LAPACK dtrexc ordering + explicit loops.

    Returns (n_R, moduli, W_hh variants, mass, fvu).
    """
    a = net.leak
    n = net.n_hidden
    W_eff = (1 - a) * np.eye(n) + a * net.W_hh.astype(np.float64)
    T, Z = naive_schur.lapack_ordered_schur(W_eff)
    starts, sizes = naive_schur.blocks_of(T)
    mods = naive_schur.block_moduli(T)
    thr = alpha * mods.max()
    below = np.nonzero(mods < thr)[0]
    n_R = int(starts[below[0]]) if below.size else n
    W_abl, mass = naive_schur.ablate_reference(Z, T, n_R, SUBSETS)
    W_hh = ((W_abl - (1 - a) * np.eye(n)) / a).astype(net.dtype)
    if rollout is None:

        def rollout(W):
            if a == 1.0:
                return naive_rnn.rollout(
                    net.W_xh, W, net.W_hy, x, net.b_h, net.b_y, net.h0
                )[0]
            return leaky_reference(net, W, x)

    m = np.ones(y.shape, bool) if mask is None else np.broadcast_to(mask, y.shape)
    ybar = np.array([y[..., j][m[..., j]].mean() for j in range(y.shape[-1])])
    var = sum(((y[..., j][m[..., j]] - ybar[j]) ** 2).sum() for j in range(y.shape[-1]))
    fvu = np.array([((rollout(W) - y) ** 2)[m].sum() / var for W in W_hh])
    moduli = np.repeat(mods, sizes)
    return n_R, moduli, W_hh, mass, fvu


def leaky_reference(net, W, x):
    a = net.leak
    h = (
        np.zeros((x.shape[1], net.n_hidden))
        if net.h0 is None
        else np.tile(net.h0, (x.shape[1], 1))
    )
    ys = []
    for t in range(x.shape[0]):
        h = (1 - a) * h + a * np.tanh(
            x[t] @ net.W_xh.T + h @ np.asarray(W, float).T + net.b_h
        )
        ys.append(h @ net.W_hy.T + net.b_y)
    return np.stack(ys)


def random_net(rng, nh=20, leak=1.0, dtype=np.float64, h0=True):
    return Network(
        W_xh=rng.standard_normal((nh, 3)).astype(dtype),
        W_hh=(1.1 * rng.standard_normal((nh, nh)) / np.sqrt(nh)).astype(dtype),
        W_hy=(rng.standard_normal((2, nh)) / np.sqrt(nh)).astype(dtype),
        b_h=(0.2 * rng.standard_normal(nh)).astype(dtype),
        b_y=(0.2 * rng.standard_normal(2)).astype(dtype),
        h0=(0.3 * rng.standard_normal(nh)).astype(dtype) if h0 else None,
        leak=leak,
    )


def data(rng, net, T=30, B=16):
    x = rng.standard_normal((T, B, net.n_inputs))
    y = leaky_reference(net, net.W_hh, x) + 0.05 * rng.standard_normal((T, B, 2))
    mask = rng.random((T, B, 1)) < 0.7
    return x, y, mask


@pytest.mark.parametrize("leak", [1.0, 0.3])
def test_matches_reference(rng, leak):
    net = random_net(rng, leak=leak)
    x, y, mask = data(rng, net)
    res = diagnose(net, x, y, mask)
    n_R, moduli, _, mass, fvu = reference_table(net, x, y, mask)
    assert res.subsets == tuple(SUBSETS)
    assert res.n_R == n_R and 0 < n_R < net.n_hidden
    np.testing.assert_allclose(res.moduli, moduli, rtol=1e-12)
    np.testing.assert_allclose(res.removed_mass, mass, atol=1e-12)
    np.testing.assert_allclose(res.metric, fvu, rtol=1e-9)
    np.testing.assert_allclose(res.delta, fvu - fvu[0], atol=1e-9)
    with np.errstate(invalid="ignore", divide="ignore"):
        want = (fvu - fvu[0]) / mass
    assert np.isnan(res.delta_per_mass[0])
    np.testing.assert_allclose(res.delta_per_mass[1:], want[1:], rtol=1e-7)
    assert res.leak == leak
    # the unablated variant is the network itself, bit for bit
    m = np.broadcast_to(mask, y.shape)
    own = ((net.rollout(x) - y) ** 2)[m].sum() / ((y - y[m.any(-1)].mean(0)) ** 2)[
        m
    ].sum()
    assert res.metric[0] == pytest.approx(own, rel=1e-12)


@pytest.mark.parametrize("batch_first", [False, True])
def test_imported_torch_network_matches_torch_ablation(rng, batch_first):
    """float32 torch nn.RNN + Linear: diagnose vs 8 nn.RNN forwards with SciPy/LAPACK-ablated W_hh."""
    torch = pytest.importorskip("torch")
    from rnnschur import from_torch

    gen = torch.Generator().manual_seed(0)
    rnn = torch.nn.RNN(3, 24, batch_first=batch_first)
    lin = torch.nn.Linear(24, 2)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(1.2 * torch.randn(24, 24, generator=gen) / np.sqrt(24))
        for p in (
            rnn.weight_ih_l0,
            rnn.bias_ih_l0,
            rnn.bias_hh_l0,
            lin.weight,
            lin.bias,
        ):
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
    net = from_torch(rnn, lin)
    x = rng.standard_normal((40, 12, 3)).astype(np.float32)  # (B, T) if batch_first
    with torch.no_grad():
        y = (
            lin(rnn(torch.from_numpy(x))[0])
            + 0.1 * torch.randn(40, 12, 2, generator=gen)
        ).numpy()

    def torch_rollout(W):
        with torch.no_grad():
            rnn.weight_hh_l0.copy_(torch.from_numpy(W))
            out = lin(rnn(torch.from_numpy(x))[0]).numpy().astype(np.float64)
        return np.swapaxes(out, 0, 1) if batch_first else out

    W0 = rnn.weight_hh_l0.detach().clone()
    y_tm = np.swapaxes(y, 0, 1) if batch_first else y
    n_R, _, _, mass, fvu = reference_table(
        net, None, y_tm.astype(np.float64), rollout=torch_rollout
    )
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(W0)
    res = diagnose(net, x, y)  # layout from the network (batch_first recorded)
    assert res.n_R == n_R
    np.testing.assert_allclose(res.removed_mass, mass, atol=1e-12)
    np.testing.assert_allclose(res.metric, fvu, rtol=2e-5)


def test_leak_changes_the_order():
    """λ = −0.95 leads in W_hh but is slow-decaying in neither: with a = 0.5 the
    effective eigenvalues are 0.025 and 0.95, so the order (and the split) flips."""
    W = np.diag([-0.95, 0.9, 0.1])
    W[0, 1] = W[1, 2] = W[0, 2] = 0.3
    plain = Network(W_xh=np.ones((3, 1)), W_hh=W, W_hy=np.ones((1, 3)))
    leaky = dataclasses.replace(plain, leak=0.5)
    x = np.random.default_rng(0).standard_normal((10, 4, 1))
    y = np.random.default_rng(1).standard_normal((10, 4, 1))
    r_plain = diagnose(plain, x, y, alpha=0.99)
    r_leaky = diagnose(leaky, x, y, alpha=0.99)
    np.testing.assert_allclose(r_plain.moduli, [0.95, 0.9, 0.1], atol=1e-12)
    np.testing.assert_allclose(r_leaky.moduli, [0.95, 0.55, 0.025], atol=1e-12)
    assert r_plain.n_R == r_leaky.n_R == 1
    assert r_leaky.threshold == pytest.approx(0.99 * 0.95)


def test_one_stacked_rollout(rng, monkeypatch):
    calls = []
    real = network_mod.rnn.rollout

    def spy(W_xh, W_hh, *args, **kw):
        calls.append(np.shape(W_hh))
        return real(W_xh, W_hh, *args, **kw)

    monkeypatch.setattr(network_mod.rnn, "rollout", spy)
    net = random_net(rng)
    x, y, mask = data(rng, net)
    diagnose(net, x, y, mask)
    assert calls == [(8, 20, 20)]


def test_metrics_and_layouts(rng):
    net = random_net(rng, dtype=np.float32)
    x, y, mask = data(rng, net)
    x = x.astype(np.float32)
    ys = np.sign(y)
    ys[ys == 0] = 1
    acc = diagnose(net, x, ys, mask, metric="sign_accuracy")
    mse = diagnose(net, x, y, mask, metric="mse")
    seen = []

    def mae(y_hat, y_, m):
        seen.append((y_hat.shape, y_.shape, m.shape))
        return float(np.abs(y_hat - y_)[np.broadcast_to(m, y_.shape)].mean())

    bf = diagnose(
        net,
        np.swapaxes(x, 0, 1),
        np.swapaxes(y, 0, 1),
        np.swapaxes(mask, 0, 1),
        metric=mae,
        batch_first=True,
    )
    assert seen[0] == ((16, 30, 2), (16, 30, 2), (16, 30, 1)) and len(seen) == 8
    assert bf.metric_name == "mae"
    y_hat = net.rollout(x)[None]  # the unablated row, scored by hand
    m = np.broadcast_to(mask, y.shape)
    assert acc.metric[0] == pytest.approx((np.sign(y_hat[0]) == ys)[m].mean())
    assert mse.metric[0] == pytest.approx(((y_hat[0] - y) ** 2)[m].mean(), rel=1e-6)
    assert bf.metric[0] == pytest.approx(np.abs(y_hat[0] - y)[m].mean(), rel=1e-6)
    np.testing.assert_array_equal(acc.removed_mass, mse.removed_mass)


def test_subsets_records_markdown(rng):
    net = random_net(rng)
    x, y, mask = data(rng, net)
    res = diagnose(net, x, y, mask, subsets=[("T_C->R",), "CC"])
    assert res.subsets == ((), ("CR",), ("CC",))
    recs = res.to_records()
    assert [r["subset"] for r in recs] == [(), ("CR",), ("CC",)]
    assert set(recs[0]) == {
        "subset",
        "removed_mass",
        "metric",
        "delta",
        "delta_per_mass",
    }
    assert all(isinstance(r[k], float) for r in recs for k in r if k != "subset")
    full = diagnose(net, x, y, mask)
    np.testing.assert_allclose(res.metric, full.metric[[0, 2, 3]], rtol=1e-12)
    md = full.to_markdown()
    assert md.count("\n| ") == 9 and "| RR+CR+CC |" in md and f"n_R = {full.n_R}" in md
    assert not res.metric.flags.writeable


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"network": "net"}, TypeError, "network must be a rnnschur.Network"),
        ({"x": np.full((5, 4, 3), np.nan)}, ValueError, "x contains NaN"),
        ({"x": np.ones((5, 4, 2))}, ValueError, "x has 2 input features"),
        ({"x": np.ones((5, 4))}, ValueError, "x must be 3-D"),
        ({"x": np.ones((5, 4, 3), np.int64)}, TypeError, "x must be a float32"),
        ({"x": np.ones((0, 4, 3)), "y": np.ones((0, 4, 2))}, ValueError, "x is empty"),
        ({"y": np.ones((5, 4, 3))}, ValueError, r"y must have shape \(5, 4, 2\)"),
        ({"y": np.ones((5, 4, 2), np.int64)}, TypeError, "y must be a float"),
        ({"mask": np.zeros((5, 4, 1), bool)}, ValueError, "mask selects no entries"),
        ({"mask": np.ones((3, 3), bool)}, ValueError, "does not broadcast"),
        ({"metric": "accuracy"}, ValueError, "metric must be one of"),
        ({"metric": lambda *_: "x"}, TypeError, "must return a real number"),
        ({"alpha": 0.0}, ValueError, "alpha must be in"),
        ({"y": np.ones((5, 4, 2))}, ValueError, "zero variance"),
        ({"metric": "sign_accuracy"}, ValueError, "±1"),
        ({"batch_first": "no"}, TypeError, "batch_first must be None or a bool"),
        ({"subsets": "RR"}, TypeError, "subsets must be"),
        ({"subsets": [("XX",)]}, ValueError, "unknown block name"),
    ],
)
def test_errors(rng, kwargs, exc, match):
    net = random_net(rng, nh=6)
    args = {
        "network": net,
        "x": rng.standard_normal((5, 4, 3)),
        "y": rng.standard_normal((5, 4, 2)),
        "mask": None,
    }
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        diagnose(
            args.pop("network"), args.pop("x"), args.pop("y"), args.pop("mask"), **args
        )
