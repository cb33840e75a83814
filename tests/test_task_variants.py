"""The task variants of the robustness study: flip-flop input noise, sine scored on the
training frequencies, CDI with the drift-only target."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnschur import evaluate, train
from rnnschur.tasks import (
    ContextIntegration,
    FlipFlop,
    SineGeneration,
    make_task,
    task_from_dict,
)
from rnnschur.training import TrainConfig, heldout_batch

VARIANTS = [
    FlipFlop(input_noise=0.1),
    FlipFlop(pulse_prob=0.5, input_noise=0.3),
    SineGeneration(eval_freqs="train"),
    ContextIntegration(target="drift"),
    ContextIntegration(target="drift", noise_std=0.1),
]


@pytest.mark.parametrize("task", VARIANTS, ids=repr)
@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_variants_sample_shapes_and_roundtrip(task, split, dtype):
    x, y, mask = task.sample(6, np.random.default_rng(0), split=split, dtype=dtype)
    assert x.shape == (task.length, 6, task.n_inputs)
    assert y.shape == (task.length, 6, task.n_outputs)
    assert x.dtype == y.dtype == dtype
    assert x.flags.c_contiguous
    assert y.flags.c_contiguous
    assert np.all(np.isfinite(x))
    assert np.all(np.isfinite(y))
    assert np.broadcast_to(mask, y.shape).all()
    assert task_from_dict(task.to_dict()) == task
    again = task.sample(6, np.random.default_rng(0), split=split, dtype=dtype)
    for a, b in zip((x, y, mask), again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_defaults_are_the_original_tasks():
    assert FlipFlop().input_noise == 0.0
    assert SineGeneration().eval_freqs == "unseen"
    assert ContextIntegration().target == "integral"
    assert FlipFlop().to_dict()["input_noise"] == 0.0
    assert make_task("sine", eval_freqs="train").eval_freqs == "train"
    assert make_task("cdi", target="drift").target == "drift"


@pytest.mark.parametrize("sigma", [0.05, 0.1, 1.0])
def test_flipflop_noise_is_added_to_the_clean_pulses(sigma):
    """Same generator state: the noisy task's pulses and targets are the clean task's;
    the inputs differ by independent N(0, sigma^2) noise on every entry."""
    clean, noisy = FlipFlop(pulse_prob=0.3), FlipFlop(pulse_prob=0.3, input_noise=sigma)
    xc, yc, _ = clean.sample(2000, np.random.default_rng(11), dtype=np.float64)
    xn, yn, _ = noisy.sample(2000, np.random.default_rng(11), dtype=np.float64)
    np.testing.assert_array_equal(yn, yc)
    d = xn - xc
    n = d.size
    assert abs(d.mean()) < 5 * sigma / np.sqrt(n)
    # std of the sample std of n Gaussians is about sigma / sqrt(2 n)
    assert abs(d.std() - sigma) < 5 * sigma / np.sqrt(2 * n)
    # noise is independent of the pulses and across time (no correlation)
    pulses = xc != 0
    assert abs(d[pulses].std() - d[~pulses].std()) < 0.05 * sigma
    r = np.corrcoef(d[1:].ravel(), d[:-1].ravel())[0, 1]
    assert abs(r) < 5 / np.sqrt(n)


def test_flipflop_noise_in_float32_matches_float64_draws():
    task = FlipFlop(input_noise=0.1)
    x32, y32, _ = task.sample(50, np.random.default_rng(2), dtype=np.float32)
    x64, y64, _ = task.sample(50, np.random.default_rng(2), dtype=np.float64)
    np.testing.assert_array_equal(y32, y64)
    np.testing.assert_allclose(x32, x64, rtol=0, atol=1e-6)


def test_sine_eval_freqs_train_scores_the_training_frequencies():
    unseen, seen = SineGeneration(), SineGeneration(eval_freqs="train")
    cues = unseen.cues
    for task, pool in ((unseen, unseen.test_indices), (seen, seen.train_indices)):
        x, _, _ = task.sample(600, np.random.default_rng(5), split="test")
        j = np.array([np.argmin(np.abs(cues - c)) for c in x[0, :, 0]])
        assert set(j.tolist()) == set(pool.tolist())  # 600 draws cover the pool
    # training is the same task whatever is scored
    for a, b in zip(
        unseen.sample(40, np.random.default_rng(9)),
        seen.sample(40, np.random.default_rng(9)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    # the held-out batch every evaluation uses follows the parameter
    x_u = heldout_batch(unseen, 300, 1)[0][0, :, 0]
    x_s = heldout_batch(seen, 300, 1)[0][0, :, 0]
    tol = 1e-6
    assert np.all(np.min(np.abs(x_u[:, None] - cues[unseen.test_indices]), 1) < tol)
    assert np.all(np.min(np.abs(x_s[:, None] - cues[seen.train_indices]), 1) < tol)


def test_sine_eval_freqs_flows_into_training_monitor_and_evaluate():
    cfg = TrainConfig(epochs=1, batches_per_epoch=3, batch_size=8, eval_size=64)
    models = [
        train(SineGeneration(eval_freqs=e), "dense_orthogonal", 8, seed=0, config=cfg)
        for e in ("unseen", "train")
    ]
    # same training batches and init: identical weights, different scored sets
    np.testing.assert_array_equal(models[0].W_hh, models[1].W_hh)
    for m in models:
        assert evaluate(m)["fvu"] == pytest.approx(m.history["eval_fvu"][-1])
    assert evaluate(models[0])["fvu"] != evaluate(models[1])["fvu"]


def test_cdi_drift_target_is_the_noiseless_integral():
    kw = {"coherences": (0.1, 0.3), "noise_std": 0.7, "dt": 0.2, "length": 20}
    noisy, drift = ContextIntegration(**kw), ContextIntegration(**kw, target="drift")
    xi, yi, _ = noisy.sample(500, np.random.default_rng(6), dtype=np.float64)
    xd, yd, _ = drift.sample(500, np.random.default_rng(6), dtype=np.float64)
    np.testing.assert_array_equal(xd, xi)  # the same inputs
    t = np.arange(1, 21, dtype=np.float64)[:, None]
    slope = yd[:, :, 0] / (0.2 * t)  # = mu_{k*}, constant over the trial
    np.testing.assert_allclose(
        slope, np.broadcast_to(slope[:1], slope.shape), rtol=1e-12
    )
    assert set(np.round(np.abs(slope[0]), 12).tolist()) == {0.1, 0.3}
    # the drift is the cued stream's mean input up to the noise of the trial mean
    k = np.argmax(xi[0, :, 2:], axis=1)
    cued = xi[:, np.arange(500), k]
    err = cued.mean(axis=0) - slope[0]
    assert abs(err.std() - 0.7 / np.sqrt(20)) < 0.1 * 0.7 / np.sqrt(20)
    # the integral target minus the drift target is the integrated noise alone
    np.testing.assert_allclose(
        yi[:, :, 0] - yd[:, :, 0],
        0.2 * np.cumsum(cued - slope[0], axis=0),
        atol=1e-12,
    )


def test_cdi_targets_agree_without_noise():
    kw = {"noise_std": 0.0, "coherences": (0.05, 0.5)}
    a = ContextIntegration(**kw).sample(64, np.random.default_rng(1))
    b = ContextIntegration(**kw, target="drift").sample(64, np.random.default_rng(1))
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize(
    ("call", "exc", "word"),
    [
        (lambda: FlipFlop(input_noise=-0.1), ValueError, "input_noise"),
        (lambda: FlipFlop(input_noise=float("inf")), ValueError, "input_noise"),
        (lambda: FlipFlop(input_noise=float("nan")), ValueError, "input_noise"),
        (lambda: FlipFlop(input_noise="0.1"), TypeError, "input_noise"),
        (lambda: FlipFlop(input_noise=True), TypeError, "input_noise"),
        (lambda: SineGeneration(eval_freqs="test"), ValueError, "eval_freqs"),
        (lambda: SineGeneration(eval_freqs=1), TypeError, "eval_freqs"),
        (lambda: ContextIntegration(target="noise"), ValueError, "target"),
        (lambda: ContextIntegration(target=None), TypeError, "target"),
        (lambda: make_task("flipflop", noise=0.1), ValueError, "noise"),
    ],
)
def test_bad_variant_parameters_raise(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


@settings(max_examples=30, deadline=None)
@given(
    sigma=st.floats(0.0, 2.0),
    p=st.floats(0.0, 1.0),
    length=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_flipflop_noise_never_changes_the_target(sigma, p, length, seed):
    clean = FlipFlop(length=length, pulse_prob=p)
    noisy = FlipFlop(length=length, pulse_prob=p, input_noise=sigma)
    xc, yc, _ = clean.sample(7, np.random.default_rng(seed))
    xn, yn, _ = noisy.sample(7, np.random.default_rng(seed))
    np.testing.assert_array_equal(yn, yc)
    if sigma == 0.0:
        np.testing.assert_array_equal(xn, xc)


def test_cdi_drift_target_has_the_documented_fvu_floor():
    """The Bayes-optimal output (dt (t+1) times the posterior mean of the cued drift
    given the evidence so far) leaves FVU about 0.22 at noise 1.0, about 3e-4 at 0.1."""
    from rnnschur.metrics import fvu

    for noise, lo, hi in ((1.0, 0.18, 0.27), (0.1, 1e-4, 1e-3)):
        task = ContextIntegration(target="drift", noise_std=noise)
        x, y, m = task.sample(4000, np.random.default_rng(0), dtype=np.float64)
        k = np.argmax(x[0, :, 2:], axis=1)
        s = np.cumsum(x[:, np.arange(4000), k], axis=0)
        n = np.arange(1, task.length + 1)[:, None]
        mus = np.array([sg * c for c in task.coherences for sg in (-1.0, 1.0)])
        logp = (mus * s[..., None] - n[..., None] * mus**2 / 2) / noise**2
        p = np.exp(logp - logp.max(axis=-1, keepdims=True))
        post = (p * mus).sum(-1) / p.sum(-1)
        assert lo < fvu((task.dt * n * post)[:, :, None], y, m) < hi
