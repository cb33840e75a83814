"""from_torch / Network.to_torch against torch's own nn.RNN, nn.RNNCell and nn.Linear."""

from __future__ import annotations

import numpy as np
import pytest

import rnnschur
from rnnschur import Network, UnsupportedNetworkError, from_torch, load_network

torch = pytest.importorskip("torch")
nn = torch.nn

TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
DTYPES = [torch.float32, torch.float64]


def _randomise(module, gen, scale=1.0):
    """Random weights AND biases (torch's default biases are small uniforms too)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(
                scale
                * torch.randn(p.shape, generator=gen, dtype=p.dtype)
                / np.sqrt(p.shape[-1])
            )


def _pair(dtype, batch_first=False, nx=3, nh=24, ny=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rnn = nn.RNN(nx, nh, batch_first=batch_first, dtype=dtype)
    lin = nn.Linear(nh, ny, dtype=dtype)
    _randomise(rnn, gen, 1.2)
    _randomise(lin, gen)
    return rnn, lin, gen


def _torch_out(rnn, lin, x, h0=None):
    with torch.no_grad():
        out, _ = rnn(torch.from_numpy(x), h0)
        return lin(out).numpy()


class Model(nn.Module):
    def __init__(self, dtype=torch.float32, batch_first=True):
        super().__init__()
        self.rnn = nn.RNN(3, 16, batch_first=batch_first, dtype=dtype)
        self.readout = nn.Linear(16, 2, dtype=dtype)

    def forward(self, x):
        return self.readout(self.rnn(x)[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_rnn_module_matches_torch(dtype, batch_first):
    rnn, lin, gen = _pair(dtype, batch_first)
    net = from_torch(rnn, lin)
    assert net.batch_first is batch_first
    assert net.dtype == (np.float32 if dtype == torch.float32 else np.float64)
    x = torch.randn(
        8, 40, 3, generator=gen, dtype=dtype
    ).numpy()  # B=8, T=40 or T=8, B=40
    err = np.abs(net.rollout(x) - _torch_out(rnn, lin, x)).max()
    assert err <= TOL[dtype]
    # the bias is the sum torch adds
    sd = rnn.state_dict()
    np.testing.assert_array_equal(
        net.b_h, (sd["bias_ih_l0"] + sd["bias_hh_l0"]).numpy()
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_learned_h0_matches_torch_hx(dtype):
    rnn, lin, gen = _pair(dtype)
    h0 = 0.5 * torch.randn(24, generator=gen, dtype=dtype)
    base = from_torch(rnn, lin)
    net = Network(**{**base.arrays(), "h0": h0.numpy()})
    x = torch.randn(30, 5, 3, generator=gen, dtype=dtype).numpy()
    hx = h0.expand(1, 5, 24).contiguous()
    assert np.abs(net.rollout(x) - _torch_out(rnn, lin, x, hx)).max() <= TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("leak", [1.0, 0.3])
def test_rnncell_loop_matches_torch(dtype, leak):
    gen = torch.Generator().manual_seed(1)
    cell = nn.RNNCell(3, 12, dtype=dtype)
    lin = nn.Linear(12, 2, dtype=dtype)
    _randomise(cell, gen, 1.5)
    _randomise(lin, gen)
    x = torch.randn(25, 6, 3, generator=gen, dtype=dtype)
    h = torch.zeros(6, 12, dtype=dtype)
    ys = []
    with torch.no_grad():
        for t in range(25):
            h = (1 - leak) * h + leak * cell(x[t], h)
            ys.append(lin(h))
    want = torch.stack(ys).numpy()
    net = from_torch(cell, lin, leak=leak)
    assert not net.batch_first
    assert np.abs(net.rollout(x.numpy()) - want).max() <= 2 * TOL[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_export_loads_bit_for_bit(dtype, batch_first):
    rnn, lin, gen = _pair(dtype, batch_first, seed=3)
    net = from_torch(rnn, lin)
    rnn_sd, lin_sd = net.to_torch()
    rnn2 = nn.RNN(3, 24, batch_first=batch_first, dtype=dtype)
    lin2 = nn.Linear(24, 4, dtype=dtype)
    rnn2.load_state_dict(rnn_sd)  # strict: exactly torch's keys
    lin2.load_state_dict(lin_sd)
    for name, t in {**rnn_sd, **{f"r.{k}": v for k, v in lin_sd.items()}}.items():
        assert t.dtype == dtype, name
    np.testing.assert_array_equal(rnn2.weight_hh_l0.detach().numpy(), net.W_hh)
    np.testing.assert_array_equal(rnn2.weight_ih_l0.detach().numpy(), net.W_xh)
    np.testing.assert_array_equal(rnn2.bias_ih_l0.detach().numpy(), net.b_h)
    assert not rnn2.bias_hh_l0.detach().numpy().any()
    np.testing.assert_array_equal(lin2.weight.detach().numpy(), net.W_hy)
    np.testing.assert_array_equal(lin2.bias.detach().numpy(), net.b_y)
    x = torch.randn(7, 33, 3, generator=gen, dtype=dtype).numpy()
    y_torch = _torch_out(rnn2, lin2, x)
    assert np.abs(net.rollout(x) - y_torch).max() <= TOL[dtype]
    assert np.abs(y_torch - _torch_out(rnn, lin, x)).max() <= TOL[dtype]
    # and back again: the same network
    again = from_torch(rnn2, lin2)
    for k, v in net.arrays().items():
        np.testing.assert_array_equal(getattr(again, k), v)


def test_module_state_dict_and_files_agree(tmp_path):
    torch.manual_seed(0)
    model = Model()
    a = from_torch(model)
    assert a.batch_first  # recorded from the submodule
    b = from_torch(model.state_dict(), batch_first=True)
    c = from_torch(
        model.state_dict(), readout="readout", prefix="rnn.", batch_first=True
    )
    d = from_torch(
        {"model": model.state_dict(), "epoch": 3}, batch_first=True
    )  # nested
    torch.save(model.state_dict(), tmp_path / "m.pt")
    e = from_torch(tmp_path / "m.pt", batch_first=True)
    f = load_network(tmp_path / "m.pt", batch_first=True)
    g = from_torch(
        {k: v.numpy() for k, v in model.state_dict().items()}, batch_first=True
    )
    for other in (b, c, d, e, f, g):
        for k, v in a.arrays().items():
            np.testing.assert_array_equal(getattr(other, k), v)
        assert other.batch_first
    x = torch.randn(4, 10, 3)
    with torch.no_grad():
        want = model(x).numpy()
    assert np.abs(a.rollout(x.numpy()) - want).max() <= 1e-6


def test_readout_forms():
    rnn, lin, _ = _pair(torch.float64)
    sd = {f"rnn.{k}": v for k, v in rnn.state_dict().items()}
    ref = from_torch(rnn, lin)
    for readout in (
        lin,
        lin.state_dict(),
        (lin.weight, lin.bias),
        (lin.weight.detach().numpy(), lin.bias.detach().numpy()),
    ):
        net = from_torch(sd, readout)
        np.testing.assert_array_equal(net.W_hy, ref.W_hy)
        np.testing.assert_array_equal(net.b_y, ref.b_y)
    no_bias = from_torch(sd, (lin.weight,))
    assert not no_bias.b_y.any()
    nb = nn.RNN(3, 5, bias=False)
    assert not from_torch(nb, nn.Linear(5, 1)).b_h.any()


# ------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("module", "match"),
    [
        (nn.RNN(3, 5, nonlinearity="relu"), "nonlinearity is 'relu'"),
        (nn.RNNCell(3, 5, nonlinearity="relu"), "nonlinearity is 'relu'"),
        (nn.RNN(3, 5, num_layers=2), "num_layers is 2"),
        (nn.RNN(3, 5, bidirectional=True), "bidirectional is True"),
        (nn.GRU(3, 5), "GRU is a gated cell"),
        (nn.LSTM(3, 5), "LSTM is a gated cell"),
        (nn.LSTM(3, 5, proj_size=2), "LSTM is a gated cell"),
        (nn.GRUCell(3, 5), "GRUCell is a gated cell"),
    ],
)
def test_refused_modules(module, match):
    with pytest.raises(UnsupportedNetworkError, match=match):
        from_torch(module, nn.Linear(5, 1))


@pytest.mark.parametrize(
    ("module", "match"),
    [
        (nn.RNN(3, 5, num_layers=2), "_l1: only a single layer.*num_layers must be 1"),
        (nn.RNN(3, 5, bidirectional=True), "_reverse: bidirectional"),
        (nn.GRU(3, 5), r"shape \(15, 5\).*GRU/LSTM"),
        (nn.LSTM(3, 5), r"shape \(20, 5\).*GRU/LSTM"),
        (nn.LSTM(3, 5, proj_size=2), "weight_hr_l0: projections"),
    ],
)
def test_refused_state_dicts(module, match):
    sd = {f"enc.{k}": v for k, v in module.state_dict().items()}
    with pytest.raises(UnsupportedNetworkError, match=match):
        from_torch(sd, nn.Linear(5, 1))


def test_refused_readouts_and_keys(tmp_path):
    rnn, lin, _ = _pair(torch.float32)
    sd = dict(rnn.state_dict())
    with pytest.raises(UnsupportedNetworkError, match=r"no readout.*pass readout="):
        from_torch(sd)
    two = {**sd, "a.weight": lin.weight, "b.weight": lin.weight}
    with pytest.raises(
        UnsupportedNetworkError,
        match=r"several possible readouts \['a.weight', 'b.weight'\]",
    ):
        from_torch(two)
    extra = {**sd, "readout.weight": lin.weight, "encoder.weight": torch.ones(3, 3)}
    with pytest.raises(UnsupportedNetworkError, match=r"keys \['encoder.weight'\]"):
        from_torch(extra)
    # an explicit prefix + readout imports just those parts
    net = from_torch(
        {f"rnn.{k}": v for k, v in extra.items()}, "rnn.readout", prefix="rnn."
    )
    assert net.n_outputs == 4
    with pytest.raises(UnsupportedNetworkError, match=r"readout='fc'.*'fc.weight'"):
        from_torch({**sd, "readout.weight": lin.weight}, "fc")
    with pytest.raises(UnsupportedNetworkError, match=r"readout must be an nn.Linear"):
        from_torch(rnn, nn.Bilinear(2, 2, 2))
    with pytest.raises(TypeError, match="readout must be"):
        from_torch(rnn, 3.0)
    with pytest.raises(UnsupportedNetworkError, match="no recurrent weight"):
        from_torch({"readout.weight": lin.weight})
    with pytest.raises(UnsupportedNetworkError, match=r"holds no nn.RNN"):
        from_torch(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="obj must be"):
        from_torch(42)
    with pytest.raises(UnsupportedNetworkError, match="missing key 'weight_ih_l0'"):
        from_torch({"weight_hh_l0": sd["weight_hh_l0"]}, lin)


def test_refused_dtypes_and_files(tmp_path):
    rnn, lin, _ = _pair(torch.float32)
    with pytest.raises(
        TypeError, match=r"weight_hh_l0 has dtype torch.float16.*\.float\(\)"
    ):
        from_torch(rnn.half(), lin.half())
    rnn, lin, _ = _pair(torch.float32)
    with pytest.raises(TypeError, match=r"different dtypes.*W_hy: float64"):
        from_torch(rnn, lin.double())

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.RNN(2, 3)
            self.b = nn.RNN(3, 3)

    with pytest.raises(
        UnsupportedNetworkError, match=r"2 recurrent modules \['a', 'b'\]"
    ):
        from_torch(Two())
    torch.save(Model(), tmp_path / "full.pt")  # a pickled module, not a state dict
    with pytest.raises(UnsupportedNetworkError, match="not a weights-only torch file"):
        from_torch(tmp_path / "full.pt")
    with pytest.raises(FileNotFoundError):
        from_torch(tmp_path / "missing.pt")


def test_export_refusals():
    net = Network(W_xh=np.ones((2, 1)), W_hh=np.eye(2), W_hy=np.ones((1, 2)), leak=0.5)
    with pytest.raises(UnsupportedNetworkError, match=r"leak=0.5"):
        net.to_torch()
    net = Network(
        W_xh=np.ones((2, 1)), W_hh=np.eye(2), W_hy=np.ones((1, 2)), h0=np.ones(2)
    )
    with pytest.raises(UnsupportedNetworkError, match="h0"):
        net.to_torch()


def test_top_level_names():
    for name in (
        "Network",
        "from_torch",
        "from_flax",
        "from_arrays",
        "load_network",
        "diagnose",
    ):
        assert name in rnnschur.__all__


def test_learned_h0_parameter_and_prefix_forms():
    class WithH0(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(3, 8)
            self.h0 = nn.Parameter(torch.randn(1, 1, 8))
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            h = self.h0.expand(1, x.shape[1], 8).contiguous()
            return self.fc(self.rnn(x, h)[0])

    torch.manual_seed(2)
    m = WithH0()
    net = from_torch(m)
    np.testing.assert_array_equal(net.h0, m.h0.detach().numpy().reshape(8))
    x = torch.randn(12, 5, 3)
    with torch.no_grad():
        want = m(x).numpy()
    assert np.abs(net.rollout(x.numpy()) - want).max() <= 1e-6
    same = from_torch(m.state_dict(), prefix="rnn", readout="fc")  # no trailing dots
    np.testing.assert_array_equal(same.h0, net.h0)


def test_gru_subclass_is_named_as_gated():
    class MyGRU(nn.GRU):
        pass

    with pytest.raises(UnsupportedNetworkError, match="MyGRU is a gated cell"):
        from_torch(MyGRU(3, 5), nn.Linear(5, 1))
