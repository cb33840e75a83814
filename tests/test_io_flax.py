"""from_flax against Flax Linen's own SimpleCell + Dense and a NumPy reference of the cell."""

from __future__ import annotations

import numpy as np
import pytest

from rnnschur import UnsupportedNetworkError, from_flax

jax = pytest.importorskip("jax")
linen = pytest.importorskip("flax.linen")
jnp = jax.numpy


def numpy_flax_cell(params, x, residual=False):
    """h' = tanh(x @ K_i + b_i + h @ K_h [+ h]), y = h @ K_d + b_d; batch-major x (B, T, Nx)."""
    cell = params["params"]["SimpleCell_0"]
    dense = params["params"]["Dense_0"]
    Ki, bi, Kh = (
        np.asarray(a, np.float64)
        for a in (cell["i"]["kernel"], cell["i"]["bias"], cell["h"]["kernel"])
    )
    Kd, bd = (
        np.asarray(dense["kernel"], np.float64),
        np.asarray(dense["bias"], np.float64),
    )
    B, T, _ = x.shape
    h = np.zeros((B, Kh.shape[0]))
    ys = []
    for t in range(T):
        h = np.tanh(x[:, t] @ Ki + bi + h @ Kh + (h if residual else 0.0))
        ys.append(h @ Kd + bd)
    return np.stack(ys, axis=1)


class Model(linen.Module):
    hidden: int = 10
    out: int = 3
    residual: bool = False

    @linen.compact
    def __call__(self, x):
        h = linen.RNN(linen.SimpleCell(features=self.hidden, residual=self.residual))(x)
        return linen.Dense(self.out)(h)


def _params(model, seed=0):
    x = jnp.zeros((2, 5, 4))
    params = model.init(jax.random.key(seed), x)
    # random, non-zero biases (Flax initialises them to zero)
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    leaves = [
        a + 0.3 * jax.random.normal(k, a.shape, a.dtype)
        for a, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree_util.tree_unflatten(tree, leaves)


@pytest.mark.parametrize("residual", [False, True])
def test_flax_simplecell_round_trip(rng, residual):
    model = Model(residual=residual)
    params = _params(model)
    net = from_flax(params, residual=residual)
    assert net.batch_first and net.dtype == np.float32
    assert (net.n_inputs, net.n_hidden, net.n_outputs) == (4, 10, 3)
    x = rng.standard_normal((6, 20, 4)).astype(np.float32)
    ours = net.rollout(x)
    flax_out = np.asarray(model.apply(params, jnp.asarray(x)))
    ref = numpy_flax_cell(params, x.astype(np.float64), residual)
    assert np.abs(ours - ref).max() <= 1e-5
    assert np.abs(flax_out - ref).max() <= 1e-5
    # the kernels are transposed exactly
    cell = params["params"]["SimpleCell_0"]
    np.testing.assert_array_equal(net.W_xh, np.asarray(cell["i"]["kernel"]).T)
    if not residual:
        np.testing.assert_array_equal(net.W_hh, np.asarray(cell["h"]["kernel"]).T)


def test_flax_explicit_readout_and_paths(rng):
    params = _params(Model())
    auto = from_flax(params)
    by_path = from_flax(params, "params/Dense_0")
    cell_only = {"cell": params["params"]["SimpleCell_0"]}
    by_dict = from_flax(cell_only, params["params"]["Dense_0"])
    for other in (by_path, by_dict):
        for k, v in auto.arrays().items():
            np.testing.assert_array_equal(getattr(other, k), v)
    tm = from_flax(params, batch_first=False, leak=0.5)
    assert not tm.batch_first and tm.leak == 0.5


def test_flax_refusals():
    params = _params(Model())
    cell = params["params"]["SimpleCell_0"]
    with pytest.raises(UnsupportedNetworkError, match="no Dense readout"):
        from_flax({"cell": cell})
    two = {
        "cell": cell,
        "d1": params["params"]["Dense_0"],
        "d2": params["params"]["Dense_0"],
    }
    with pytest.raises(UnsupportedNetworkError, match="several"):
        from_flax(two)
    with pytest.raises(UnsupportedNetworkError, match="several SimpleCells"):
        from_flax({"a": cell, "b": cell, "d": params["params"]["Dense_0"]})
    extra = {
        "cell": cell,
        "d": params["params"]["Dense_0"],
        "norm": {"scale": jnp.ones(10)},
    }
    with pytest.raises(UnsupportedNetworkError, match=r"\['norm/scale'\] are neither"):
        from_flax(extra)
    # parameter layouts of linen.LSTMCell / GRUCell (gates "ii", "hf", ... / "ir", "hz")
    dense = {"kernel": np.ones((6, 6), np.float32)}
    lstm = {
        "cell": dict.fromkeys(("ii", "if", "ig", "io", "hi", "hf", "hg", "ho"), dense)
    }
    gru = {"cell": dict.fromkeys(("ir", "iz", "in", "hr", "hz", "hn"), dense)}
    for gated in (lstm, gru):
        with pytest.raises(UnsupportedNetworkError, match="GRU/LSTM"):
            from_flax(gated)
    with pytest.raises(TypeError, match="params must be a mapping"):
        from_flax([1, 2])
    with pytest.raises(UnsupportedNetworkError, match="no key 'x/kernel'"):
        from_flax(params, "x")
    bad = {
        "cell": {"i": cell["i"], "h": {"kernel": jnp.ones((10, 40))}},
        "d": params["params"]["Dense_0"],
    }
    with pytest.raises(UnsupportedNetworkError, match=r"h/kernel has shape \(10, 40\)"):
        from_flax(bad)
