from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnschur.tasks import (
    TASKS,
    ContextIntegration,
    CopyTask,
    FlipFlop,
    SineGeneration,
    make_task,
    task_from_dict,
)

ALL = [CopyTask(), FlipFlop(), SineGeneration(), ContextIntegration()]


@pytest.mark.parametrize("task", ALL, ids=lambda t: t.name)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_dtypes_and_contiguity(task, dtype):
    x, y, mask = task.sample(5, np.random.default_rng(0), dtype=dtype)
    assert x.shape == (task.length, 5, task.n_inputs)
    assert y.shape == (task.length, 5, task.n_outputs)
    assert x.dtype == dtype
    assert y.dtype == dtype
    assert mask.dtype == np.bool_
    assert np.broadcast_to(mask, y.shape).shape == y.shape
    assert x.flags.c_contiguous
    assert y.flags.c_contiguous
    assert np.all(np.isfinite(x))
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("task", ALL, ids=lambda t: t.name)
@pytest.mark.parametrize("split", ["train", "test"])
def test_same_seed_same_batch_and_different_seeds_differ(task, split):
    a = task.sample(8, np.random.default_rng(7), split=split)
    b = task.sample(8, np.random.default_rng(7), split=split)
    c = task.sample(8, np.random.default_rng(8), split=split)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("task", ALL, ids=lambda t: t.name)
def test_roundtrip_through_dict(task):
    d = task.to_dict()
    assert d["name"] == task.name
    assert task_from_dict(d) == task
    assert TASKS[task.name] is type(task)


def test_copy_task_definition():
    task = CopyTask(symbols=3, dim=2, lags=7)
    x, y, mask = task.sample(4, np.random.default_rng(1))
    s = task.symbols
    assert task.length == 10
    assert set(np.unique(x[:s])) <= {-1.0, 1.0}
    assert np.all(x[s:] == 0)
    # target at replay step ℓ (time s + ℓ - 1) is symbol (ℓ - 1) mod s
    for ell in range(1, task.lags + 1):
        np.testing.assert_array_equal(y[s + ell - 1], x[(ell - 1) % s])
    expected = np.zeros(task.length, bool)
    expected[s:] = True
    np.testing.assert_array_equal(np.broadcast_to(mask, y.shape)[:, 0, 0], expected)
    assert np.broadcast_to(mask, y.shape)[s:].all()
    assert task.replay_steps == slice(3, 10)


def test_copy_task_paper_sizes_and_fair_symbols():
    task = CopyTask()
    assert (task.n_inputs, task.n_outputs, task.length) == (8, 8, 136)
    x, _, mask = task.sample(2000, np.random.default_rng(2))
    assert int(np.broadcast_to(mask, (136, 1, 8)).sum()) == 128 * 8
    # signs are fair: 2000*64 draws, mean within 5 standard errors of 0
    assert abs(x[:8].mean()) < 5 / np.sqrt(x[:8].size)


def _flipflop_target_by_loop(x):
    y = np.zeros_like(x)
    state = np.zeros(x.shape[1:])
    for t in range(x.shape[0]):
        state = np.where(x[t] != 0, x[t], state)
        y[t] = state
    return y


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_flipflop_target_is_sign_of_last_pulse(p):
    task = FlipFlop(bits=3, length=25, pulse_prob=p)
    x, y, mask = task.sample(50, np.random.default_rng(3))
    assert np.all(x[0] != 0)  # forced pulse at t = 0
    assert set(np.unique(x)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(y, _flipflop_target_by_loop(x))
    assert np.all(np.abs(y) == 1)
    assert np.broadcast_to(mask, y.shape).all()
    if p == 0.0:
        assert np.all(x[1:] == 0)
    if p == 1.0:
        assert np.all(x != 0)


def test_flipflop_pulse_rate_and_sign_balance():
    task = FlipFlop(pulse_prob=0.2)
    x, _, _ = task.sample(4000, np.random.default_rng(4))
    rate = np.mean(x[1:] != 0)
    n = x[1:].size
    assert abs(rate - 0.2) < 5 * np.sqrt(0.2 * 0.8 / n)
    pulses = x[x != 0]
    assert abs(pulses.mean()) < 5 / np.sqrt(pulses.size)


def test_sine_definition_and_held_out_frequencies():
    task = SineGeneration()
    assert task.test_indices.tolist() == list(range(2, 51, 5))
    assert np.intersect1d(task.train_indices, task.test_indices).size == 0
    assert task.train_indices.size + task.test_indices.size == 51
    omegas, cues = task.omegas, task.cues
    assert omegas[0] == pytest.approx(0.1)
    assert omegas[-1] == pytest.approx(0.6)
    np.testing.assert_allclose(cues, np.arange(51) / 51 + 0.25)
    for split, pool in (("train", task.train_indices), ("test", task.test_indices)):
        x, y, _ = task.sample(
            400, np.random.default_rng(5), split=split, dtype=np.float64
        )
        assert np.all(x == x[:1])  # static cue
        j = np.array([np.argmin(np.abs(cues - c)) for c in x[0, :, 0]])
        np.testing.assert_allclose(cues[j], x[0, :, 0])
        assert set(j) <= set(pool.tolist())
        assert len(set(j)) == pool.size  # 400 draws cover the pool
        t = np.arange(task.length)[:, None]
        np.testing.assert_allclose(
            y[:, :, 0], np.sin(omegas[j][None, :] * t), atol=1e-12
        )


def test_cdi_definition():
    task = ContextIntegration(coherences=(0.1, 0.3), noise_std=0.5, dt=0.2, length=30)
    x, y, mask = task.sample(64, np.random.default_rng(6), dtype=np.float64)
    ctx = x[:, :, 2:]
    assert np.all((ctx == 0) | (ctx == 1))
    assert np.all(ctx.sum(axis=2) == 1)
    assert np.all(ctx == ctx[:1])  # context constant over the trial
    k = np.argmax(ctx[0], axis=1)
    assert set(k.tolist()) == {0, 1}
    expected = np.zeros((30, 64))
    acc = np.zeros(64)
    for t in range(30):
        acc = acc + x[t, np.arange(64), k]
        expected[t] = 0.2 * acc
    np.testing.assert_allclose(y[:, :, 0], expected, rtol=1e-12, atol=1e-12)
    assert np.broadcast_to(mask, y.shape).all()


def test_cdi_drift_and_noise_statistics():
    task = ContextIntegration()
    x, _, _ = task.sample(3000, np.random.default_rng(7), dtype=np.float64)
    streams = x[:, :, :2]
    drift = streams.mean(axis=0)  # per trial and stream
    # each trial's drift is one of ±coherences, up to the noise of a 48-step mean
    se = task.noise_std / np.sqrt(task.length)
    nearest = np.min(
        np.abs(np.abs(drift)[..., None] - np.asarray(task.coherences)), axis=-1
    )
    assert np.mean(nearest < 4 * se) > 0.99
    resid = streams - drift[None]
    assert resid.std() == pytest.approx(task.noise_std * np.sqrt(1 - 1 / 48), rel=0.02)


def test_make_task_by_name_and_defaults():
    assert make_task("copy") == CopyTask()
    assert make_task("flipflop", pulse_prob=0.5).pulse_prob == 0.5
    assert make_task("cdi", coherences=[0.1]).coherences == (0.1,)
    assert FlipFlop().length == 25
    assert SineGeneration().length == 50
    assert ContextIntegration().length == 48
    assert ContextIntegration().n_inputs == 4


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda: make_task("nope"), ValueError),
        (lambda: make_task(3), TypeError),
        (lambda: make_task("copy", width=3), ValueError),
        (lambda: task_from_dict({"symbols": 3}), ValueError),
        (lambda: task_from_dict("copy"), ValueError),
        (lambda: CopyTask(symbols=0), ValueError),
        (lambda: CopyTask(dim=2.0), TypeError),
        (lambda: CopyTask(lags=True), TypeError),
        (lambda: FlipFlop(pulse_prob=1.5), ValueError),
        (lambda: FlipFlop(pulse_prob=float("nan")), ValueError),
        (lambda: FlipFlop(pulse_prob="0.2"), TypeError),
        (lambda: FlipFlop(length=0), ValueError),
        (lambda: SineGeneration(n_freqs=1), ValueError),
        (lambda: SineGeneration(omega_min=0.5, omega_max=0.4), ValueError),
        (lambda: SineGeneration(holdout_every=1), ValueError),
        (lambda: SineGeneration(holdout_offset=5), ValueError),
        (lambda: ContextIntegration(inputs=6), ValueError),
        (lambda: ContextIntegration(coherences=()), ValueError),
        (lambda: ContextIntegration(coherences=0.5), TypeError),
        (lambda: ContextIntegration(coherences=(-0.1,)), ValueError),
        (lambda: ContextIntegration(noise_std=-1.0), ValueError),
        (lambda: ContextIntegration(dt=0.0), ValueError),
    ],
)
def test_bad_parameters_raise(call, exc):
    with pytest.raises(exc):
        call()


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"rng": 0}, TypeError, "rng"),
        ({"rng": np.random.RandomState(0)}, TypeError, "rng"),
        ({"split": "valid"}, ValueError, "split"),
        ({"dtype": np.int32}, TypeError, "dtype"),
        ({"dtype": np.float16}, TypeError, "dtype"),
    ],
)
@pytest.mark.parametrize("task", ALL, ids=lambda t: t.name)
def test_bad_sample_arguments_raise(task, kwargs, exc, word):
    args = {"batch_size": 2, "rng": np.random.default_rng(0)}
    args.update(kwargs)
    extra = {k: args.pop(k) for k in ("split", "dtype") if k in args}
    with pytest.raises(exc, match=word):
        task.sample(args["batch_size"], args["rng"], **extra)


@given(
    symbols=st.integers(1, 9),
    dim=st.integers(1, 5),
    lags=st.integers(1, 30),
    batch=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_copy_properties(symbols, dim, lags, batch, seed):
    task = CopyTask(symbols=symbols, dim=dim, lags=lags)
    x, y, mask = task.sample(batch, np.random.default_rng(seed))
    m = np.broadcast_to(mask, y.shape)
    assert m.sum() == lags * batch * dim
    assert np.all(y[~m] == 0)
    assert np.all(np.abs(y[m]) == 1)
    lag = np.arange(lags)
    np.testing.assert_array_equal(y[symbols:], x[lag % symbols])


@given(
    bits=st.integers(1, 5),
    length=st.integers(1, 40),
    p=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_flipflop_properties(bits, length, p, seed):
    x, y, _ = FlipFlop(bits=bits, length=length, pulse_prob=p).sample(
        3, np.random.default_rng(seed)
    )
    np.testing.assert_array_equal(y, _flipflop_target_by_loop(x))
