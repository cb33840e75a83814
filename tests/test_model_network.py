"""TrainedModel runs through rnnschur.Network, bit for bit as the bare core did."""

from __future__ import annotations

import numpy as np
import pytest

import rnnschur
import rnnschur.training as tr
from rnnschur.tasks import FlipFlop


@pytest.fixture(scope="module")
def model():
    cfg = tr.TrainConfig(epochs=1, batches_per_epoch=2, batch_size=4, n_threads=1)
    return tr.train(
        FlipFlop(), "dense_orthogonal", 8, seed=1, config=cfg, progress=False
    )


def test_network_is_the_models_weights(model):
    net = model.network
    assert isinstance(net, rnnschur.Network) and net is model.network
    for k in ("W_xh", "W_hh", "W_hy"):
        assert np.array_equal(getattr(net, k), getattr(model, k))
        assert getattr(net, k).dtype == getattr(model, k).dtype
    assert net.leak == 1.0 and net.h0 is None
    assert not net.b_h.any() and not net.b_y.any()


@pytest.mark.parametrize("w_dtype", [None, np.float32, np.float64])
def test_rollout_bit_identical_to_the_core(model, w_dtype):
    rng = np.random.default_rng(0)
    x, _, _ = model.task.sample(5, rng)
    W = None
    if w_dtype is not None:
        W = np.stack([model.W_hh, 0.5 * model.W_hh]).astype(w_dtype)
    got = model.rollout(x, W_hh=W, n_threads=1)
    want = rnnschur.rollout(
        model.W_xh, model.W_hh if W is None else W, model.W_hy, x, n_threads=1
    )
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_diagnose_and_fixed_points_take_the_model(model):
    rng = np.random.default_rng(2)
    x, y, mask = model.task.sample(6, rng)
    a = rnnschur.diagnose(model, x, y, mask)
    b = rnnschur.diagnose(model.network, x, y, mask)
    assert np.array_equal(a.metric, b.metric) and a.n_R == b.n_R
    assert np.array_equal(a.removed_mass, b.removed_mass)
    with pytest.raises(TypeError, match="TrainedModel"):
        rnnschur.diagnose(object(), x, y, mask)
    from rnnschur.dynamics import network_arrays

    arr = network_arrays(model)
    assert np.array_equal(arr.W_hh, model.W_hh.astype(np.float64))
