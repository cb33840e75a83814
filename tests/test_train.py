from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

import naive_rnn as ref  # the core's independent NumPy reference (float64)
import rnnschur.training as tr
from rnnschur import metrics
from rnnschur.constructions import (
    CONSTRUCTIONS,
    W_from_cayley,
    block_sizes_of,
    init_params,
)
from rnnschur.tasks import ContextIntegration, CopyTask, FlipFlop, SineGeneration
from rnnschur.training import (
    TrainConfig,
    TrainedModel,
    TrainingDiverged,
    evaluate,
    train,
)
from rnnschur.training import step as tstep

SMALL = TrainConfig(
    epochs=2, batches_per_epoch=6, batch_size=8, eval_size=32, n_threads=1
)


def _small(**kw):
    return dataclasses.replace(SMALL, **kw)


# ----------------------------------------------------------------------- config


def test_default_configs():
    c = TrainConfig()
    assert (c.epochs, c.batches_per_epoch, c.batch_size, c.lr) == (30, 128, 64, 1e-3)
    assert c.total_steps == 3840
    assert c.clip is None
    assert c.lr_schedule == "constant"
    assert c == tr.PAPER_CONFIG
    neuro = tr.NEURO_CONFIG
    assert neuro == dataclasses.replace(c, lr_schedule="cosine", lr_final=0.1)
    assert neuro.lr_at(0) == pytest.approx(1e-3)
    assert neuro.lr_at(3839) == pytest.approx(1e-4, rel=1e-3)
    assert tr.default_config("flipflop") == neuro
    assert tr.default_config(SineGeneration()) == neuro
    assert tr.default_config(ContextIntegration()) == neuro
    assert tr.default_config(CopyTask()) == tr.COPY_CONFIG


def test_default_copy_curriculum_never_exceeds_the_tasks_lags():
    assert tr.default_config(CopyTask()) == tr.COPY_CONFIG
    assert tr.default_config("copy") == tr.COPY_CONFIG
    c = tr.default_config(CopyTask(lags=16)).copy_curriculum
    assert c == ((0, 16),)
    c = tr.default_config(CopyTask(lags=64)).copy_curriculum
    assert c == ((0, 16), (40, 32), (80, 64))
    c = tr.default_config(CopyTask(lags=8)).copy_curriculum
    assert c == ((0, 8),)
    cfg = tr.default_config(CopyTask(lags=20))
    phases = tr.curriculum_phases(CopyTask(lags=20), cfg)
    assert max(p.lags for p in phases) == 20
    assert phases[-1].lags == 20


def test_lr_schedules():
    c = TrainConfig(epochs=2, batches_per_epoch=50, lr=1e-2)
    assert all(c.lr_at(s) == 1e-2 for s in range(100))
    c = TrainConfig(
        epochs=2, batches_per_epoch=50, lr=1e-2, lr_schedule="cosine", lr_final=0.1
    )
    assert c.lr_at(0) == pytest.approx(1e-2)
    assert c.lr_at(50) == pytest.approx(
        1e-2 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    )
    assert c.lr_at(100) == pytest.approx(1e-3)
    lrs = [c.lr_at(s) for s in range(100)]
    assert all(a >= b for a, b in itertools.pairwise(lrs))
    c = TrainConfig(lr=1e-2, warmup_steps=10)
    assert c.lr_at(0) == pytest.approx(1e-3)
    assert c.lr_at(9) == pytest.approx(1e-2)
    assert c.lr_at(10) == pytest.approx(1e-2)


def test_config_dict_roundtrip():
    c = TrainConfig(clip=2.0, lr_schedule="cosine", betas=[0.8, 0.99], n_threads=2)
    assert c.betas == (0.8, 0.99)
    assert TrainConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown"):
        TrainConfig.from_dict({**c.to_dict(), "momentum": 0.9})


@pytest.mark.parametrize(
    ("kw", "exc"),
    [
        ({"epochs": 0}, ValueError),
        ({"epochs": 1.5}, TypeError),
        ({"batch_size": True}, TypeError),
        ({"lr": 0.0}, ValueError),
        ({"lr": float("inf")}, ValueError),
        ({"lr": "1e-3"}, ValueError),
        ({"betas": (0.9,)}, ValueError),
        ({"betas": (0.9, 1.0)}, ValueError),
        ({"eps": -1.0}, ValueError),
        ({"clip": 0.0}, ValueError),
        ({"clip": float("nan")}, ValueError),
        ({"lr_schedule": "step"}, ValueError),
        ({"lr_final": 2.0}, ValueError),
        ({"warmup_steps": -1}, ValueError),
        ({"eval_seed": -3}, ValueError),
        ({"dtype": "float16"}, ValueError),
        ({"n_threads": 0}, ValueError),
    ],
)
def test_config_validation(kw, exc):
    with pytest.raises(exc, match=next(iter(kw))):
        TrainConfig(**kw)


def test_copy_curriculum_phases_and_validation():
    cfg = TrainConfig(epochs=6, copy_curriculum=[[1, 4], (3, 16), (5, 128)])
    assert cfg.copy_curriculum == ((1, 4), (3, 16), (5, 128))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    phases = tr.curriculum_phases(CopyTask(), cfg)
    assert [p.lags for p in phases] == [128, 4, 4, 16, 16, 128]
    assert phases[1] is phases[2]
    for bad in ([(2, 4), (1, 8)], [(0, 0)], [(0, 4, 1)], [(-1, 4)], [(0, 2.5)], 3):
        with pytest.raises(ValueError, match="copy_curriculum"):
            TrainConfig(copy_curriculum=bad)
    with pytest.raises(ValueError, match="copy task only"):
        train(
            FlipFlop(),
            "cayley",
            4,
            seed=0,
            config=_small(copy_curriculum=[(0, 3)]),
            progress=False,
        )


def test_copy_curriculum_trains_on_short_sequences_and_evaluates_on_the_full_task(
    monkeypatch,
):
    seen = []
    real = tstep.core_loss_and_grad

    def spy(W_xh, W_hh, W_hy, x, y, mask, n):
        seen.append(x.shape[0])
        return real(W_xh, W_hh, W_hy, x, y, mask, n)

    monkeypatch.setattr(tstep, "core_loss_and_grad", spy)
    task = CopyTask(symbols=2, dim=2, lags=12)
    cfg = _small(epochs=3, batches_per_epoch=2, copy_curriculum=[(0, 3), (2, 12)])
    m = train(task, "dense_orthogonal", 8, seed=0, config=cfg, progress=False)
    assert seen == [5, 5, 5, 5, 14, 14]
    x, y, mask = tr.heldout_batch(task, cfg.eval_size, cfg.eval_seed)
    y_ref = ref.rollout(m.W_xh, m.W_hh, m.W_hy, x)[0]
    acc = float(metrics.replay_accuracy(y_ref, y, mask))
    assert m.history["eval_accuracy"][-1] == pytest.approx(acc)


# ----------------------------------------------------------------------- Adam


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(50)
    grads = rng.standard_normal((30, 50)) * np.logspace(-6, 2, 50)
    lrs = np.linspace(1e-2, 1e-3, 30)
    theta = theta0.copy()
    adam = tstep.Adam(theta, (0.9, 0.999), 1e-8)
    p = torch.nn.Parameter(torch.tensor(theta0))
    opt = torch.optim.Adam([p], lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    for g, lr in zip(grads, lrs, strict=True):
        adam.step(g, float(lr))
        for group in opt.param_groups:
            group["lr"] = float(lr)
        p.grad = torch.tensor(g)
        opt.step()
    np.testing.assert_allclose(theta, p.detach().numpy(), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------- gradient wiring


def _full_loss(construction, params, x, y, mask):
    W_hh = params["W_hh"]
    if construction == "cayley":
        W_hh = W_from_cayley(params["A"], params["D"], block_sizes=params["D_blocks"])
    if construction == "cayley_free":
        W_hh = W_from_cayley(params["A"], params["D"], free_D=True)
    return ref.loss_and_grad(params["W_xh"], W_hh, params["W_hy"], x, y, mask)[0]


@pytest.mark.parametrize("construction", CONSTRUCTIONS)
def test_network_gradient_matches_finite_differences(construction):
    task = CopyTask(symbols=3, dim=2, lags=5)
    rng = np.random.default_rng(1)
    init = init_params(construction, task.n_inputs, 6, task.n_outputs, rng)
    for k in ("W_hh", "A", "D"):
        if k in init:
            init[k] = init[k] * 1.5  # out of the linear regime
    net = tstep.FlatNetwork(init, construction, np.float64)
    x, y, mask = task.sample(4, rng, dtype=np.float64)
    loss = net.loss_grad(x, y, mask, 1)
    assert loss == pytest.approx(_full_loss(construction, init, x, y, mask), rel=1e-12)
    eps = 1e-6
    for name in net.names:
        g = net.g[name]
        coords = [tuple(c) for c in rng.integers(0, g.shape, size=(4, 2))]
        if name == "A":
            coords = [(0, 3), (1, 5), (2, 4)]
        free = construction == "cayley_free"
        if name == "D" and not free:
            coords = [(0, 0), (1, 0)] if init["D_blocks"][0] == 2 else [(0, 0)]
        if name == "D" and free:  # any entry, inside or outside the initial blocks
            coords = [(0, 0), (1, 0), (0, 4), (5, 2), (3, 3)]
        for c in coords:
            plus = {k: v.copy() for k, v in init.items()}
            minus = {k: v.copy() for k, v in init.items()}
            for sgn, dct in ((1, plus), (-1, minus)):
                dct[name][c] += sgn * eps
                if name == "A":
                    dct[name][c[::-1]] -= sgn * eps
                if name == "D" and c[0] != c[1] and not free:
                    dct[name][c[::-1]] -= sgn * eps
                if (
                    name == "D"
                    and c[0] == c[1]
                    and init["D_blocks"][0] == 2
                    and not free
                ):
                    dct[name][1, 1] += sgn * eps
            fd = (
                _full_loss(construction, plus, x, y, mask)
                - _full_loss(construction, minus, x, y, mask)
            ) / (2 * eps)
            assert g[c] == pytest.approx(fd, rel=1e-5, abs=1e-9), (name, c)


# ----------------------------------------------------------------------- training


def test_train_reduces_loss_and_fills_history():
    cfg = _small(epochs=4, batches_per_epoch=25, lr=1e-2)
    m = train(FlipFlop(), "dense_orthogonal", 16, seed=0, config=cfg, progress=False)
    assert isinstance(m, TrainedModel)
    h = m.history
    assert set(h) == {
        "train_loss",
        "grad_norm",
        "lr",
        "eval_loss",
        "eval_fvu",
        "seconds",
    }
    assert all(len(v) == 4 for v in h.values())
    assert h["train_loss"][-1] < 0.6 * h["train_loss"][0]
    assert h["eval_fvu"][-1] < h["eval_fvu"][0]
    assert h["seconds"] == sorted(h["seconds"])
    assert m.train_seconds == h["seconds"][-1]
    assert m.W_xh.dtype == m.W_hh.dtype == m.W_hy.dtype == np.float32
    assert (m.W_xh.shape, m.W_hh.shape, m.W_hy.shape) == ((16, 3), (16, 16), (3, 16))
    assert (m.construction, m.hidden, m.seed, m.config) == (
        "dense_orthogonal",
        16,
        0,
        cfg,
    )
    assert m.version
    assert m.cayley is None


def test_train_accepts_task_names_and_copy_history_has_accuracy():
    cfg = _small(epochs=1, batches_per_epoch=2)
    m = train(
        "copy",
        "dense_default",
        8,
        seed=1,
        config=dataclasses.replace(cfg),
        progress=False,
    )
    assert m.task == CopyTask()
    assert len(m.history["eval_accuracy"]) == 1
    assert 0.0 <= m.history["eval_accuracy"][0] <= 1.0


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("construction", ["dense_normal", "cayley"])
def test_same_seed_gives_bitwise_identical_models(construction, n_threads):
    cfg = _small(n_threads=n_threads, batch_size=48)
    a = train(FlipFlop(), construction, 10, seed=3, config=cfg, progress=False)
    b = train(FlipFlop(), construction, 10, seed=3, config=cfg, progress=False)
    c = train(FlipFlop(), construction, 10, seed=4, config=cfg, progress=False)
    for k in ("W_xh", "W_hh", "W_hy"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
        assert not np.array_equal(getattr(a, k), getattr(c, k))
    for k in a.history:
        if k != "seconds":
            assert a.history[k] == b.history[k]


def test_cayley_training_keeps_the_form_exactly():
    cfg = _small(epochs=2, batches_per_epoch=10, lr=1e-2)
    m = train(SineGeneration(), "cayley", 12, seed=5, config=cfg, progress=False)
    A, D, blocks = m.cayley["A"], m.cayley["D"], m.cayley["D_blocks"]
    init = init_params(
        "cayley", 1, 12, 1, np.random.default_rng(np.random.SeedSequence(5).spawn(2)[0])
    )
    assert A.dtype == D.dtype == np.float32
    assert np.array_equal(A, -A.T)
    assert np.array_equal(blocks, init["D_blocks"])
    assert np.array_equal(block_sizes_of(D), blocks)
    assert not np.array_equal(A, init["A"].astype(np.float32))  # it did train
    W = W_from_cayley(A.astype(np.float64), D.astype(np.float64), block_sizes=blocks)
    np.testing.assert_array_equal(m.W_hh, W.astype(np.float32))


def test_float64_training():
    m = train(
        FlipFlop(),
        "dense_orthogonal",
        8,
        seed=0,
        config=_small(dtype="float64"),
        progress=False,
    )
    assert m.W_hh.dtype == np.float64
    assert np.isfinite(m.history["eval_fvu"][-1])


def test_clipping_bounds_the_step():
    # With clip tiny and lr large, Adam's step is still lr-bounded; the recorded
    # pre-clip gradient norm must exceed the clip (so clipping was exercised).
    cfg = _small(clip=1e-3, epochs=1)
    m = train(FlipFlop(), "dense_default", 8, seed=0, config=cfg, progress=False)
    assert m.history["grad_norm"][0] > 1e-3


def test_progress_bar_writes_to_stderr(capsys):
    train(
        FlipFlop(), "dense_default", 8, seed=0, config=_small(epochs=1), progress=True
    )
    err = capsys.readouterr().err
    assert "flipflop/dense_default" in err
    assert "6/6" in err


def test_quiet_training_prints_nothing(capsys):
    train(
        FlipFlop(), "dense_default", 8, seed=0, config=_small(epochs=1), progress=False
    )
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == ""


# ----------------------------------------------------------------------- divergence


def test_nan_loss_stops_with_epoch_batch_and_last_good_parameters(monkeypatch):
    cfg = _small(epochs=3, batches_per_epoch=4)
    calls = {"n": 0}
    real = tstep.core_loss_and_grad

    def flaky(*args):
        calls["n"] += 1
        out = real(*args)
        if calls["n"] == 7:  # epoch 1, batch 2 (0-based)
            return (float("nan"), *out[1:])
        return out

    monkeypatch.setattr(tstep, "core_loss_and_grad", flaky)
    with pytest.raises(TrainingDiverged, match="epoch 1, batch 2") as info:
        train(FlipFlop(), "dense_orthogonal", 8, seed=2, config=cfg, progress=False)
    exc = info.value
    assert (exc.epoch, exc.batch) == (1, 2)
    assert len(exc.model.history["train_loss"]) == 1  # epoch 0 completed
    monkeypatch.setattr(tstep, "core_loss_and_grad", real)
    # last good = before the last applied update = after 5 updates (same data stream)
    ref_model = train(
        FlipFlop(),
        "dense_orthogonal",
        8,
        seed=2,
        config=_small(epochs=1, batches_per_epoch=5),
        progress=False,
    )
    for k in ("W_xh", "W_hh", "W_hy"):
        np.testing.assert_array_equal(getattr(exc.model, k), getattr(ref_model, k))


def test_nan_gradient_is_caught(monkeypatch):
    real = tstep.core_loss_and_grad

    def bad_grad(*args):
        loss, gxh, ghh, ghy = real(*args)
        ghh = ghh.copy()
        ghh[0, 0] = np.inf
        return loss, gxh, ghh, ghy

    monkeypatch.setattr(tstep, "core_loss_and_grad", bad_grad)
    with pytest.raises(
        TrainingDiverged, match="non-finite gradient at epoch 0, batch 0"
    ):
        train(FlipFlop(), "cayley", 6, seed=0, config=SMALL, progress=False)


def test_real_divergence_from_a_huge_learning_rate():
    cfg = _small(lr=1e30, epochs=1)
    with pytest.raises(TrainingDiverged, match="epoch 0") as info:
        train(FlipFlop(), "dense_default", 8, seed=0, config=cfg, progress=False)
    m = info.value.model
    assert all(np.all(np.isfinite(getattr(m, k))) for k in ("W_xh", "W_hh", "W_hy"))


# ----------------------------------------------------------------------- evaluation


def test_evaluate_matches_metrics_on_a_reference_rollout():
    cfg = _small(eval_size=40)
    m = train(
        CopyTask(symbols=2, dim=3, lags=6),
        "dense_orthogonal",
        12,
        seed=0,
        config=cfg,
        progress=False,
    )
    x, y, mask = tr.heldout_batch(m.task, 40, cfg.eval_seed)
    y_ref = ref.rollout(m.W_xh, m.W_hh, m.W_hy, x)[0]
    sc = evaluate(m)
    assert sc["fvu"] == pytest.approx(float(metrics.fvu(y_ref, y, mask)), rel=1e-5)
    assert sc["accuracy"] == pytest.approx(
        float(metrics.replay_accuracy(y_ref, y, mask))
    )
    mm = np.broadcast_to(mask, y.shape)
    assert sc["loss"] == pytest.approx(float(np.mean((y_ref - y)[mm] ** 2)), rel=1e-5)
    # the last history entry is the same held-out set
    assert m.history["eval_fvu"][-1] == pytest.approx(sc["fvu"], rel=1e-12)
    # another W_hh changes the result; another seed changes the set
    zero = evaluate(m, W_hh=np.zeros_like(m.W_hh))
    assert zero["fvu"] != sc["fvu"]
    assert evaluate(m, size=10, seed=99)["fvu"] != sc["fvu"]


def test_evaluate_a_stack_of_variants():
    m = train(
        CopyTask(symbols=2, dim=3, lags=6),
        "dense_normal",
        10,
        seed=0,
        config=SMALL,
        progress=False,
    )
    stack = np.stack([m.W_hh, 0.5 * m.W_hh, m.W_hh.astype(np.float64)])
    sc = evaluate(m, W_hh=stack)
    assert sc["fvu"].shape == sc["accuracy"].shape == sc["loss"].shape == (3,)
    single = evaluate(m)
    assert sc["fvu"][0] == pytest.approx(single["fvu"], rel=1e-6)
    assert sc["accuracy"][0] == pytest.approx(single["accuracy"])
    assert sc["loss"][1] == pytest.approx(
        evaluate(m, W_hh=0.5 * m.W_hh)["loss"], rel=1e-6
    )


def test_model_rollout_with_a_stack():
    m = train(FlipFlop(), "dense_default", 8, seed=0, config=SMALL, progress=False)
    x, _, _ = FlipFlop().sample(3, np.random.default_rng(0))
    stack = np.stack([m.W_hh, np.zeros_like(m.W_hh)])
    out = m.rollout(x, W_hh=stack)
    assert out.shape == (2, 25, 3, 3)
    np.testing.assert_allclose(out[0], m.rollout(x), rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "kw", "exc"),
    [
        ((FlipFlop(), "dense", 8), {"seed": 0}, ValueError),
        ((FlipFlop(), 3, 8), {"seed": 0}, TypeError),
        ((FlipFlop(), "cayley", 0), {"seed": 0}, ValueError),
        ((FlipFlop(), "cayley", 8.0), {"seed": 0}, TypeError),
        ((FlipFlop(), "cayley", 8), {"seed": -1}, ValueError),
        ((FlipFlop(), "cayley", 8), {"seed": 1.0}, TypeError),
        ((FlipFlop(), "cayley", 8), {"seed": 0, "config": {"epochs": 1}}, TypeError),
        (("nope", "cayley", 8), {"seed": 0}, ValueError),
        ((42, "cayley", 8), {"seed": 0}, TypeError),
    ],
)
def test_train_bad_arguments(args, kw, exc):
    with pytest.raises(exc):
        train(*args, **kw, progress=False)


def test_evaluate_rejects_non_models():
    with pytest.raises(TypeError, match="TrainedModel"):
        evaluate({"W_hh": np.eye(2)})


@pytest.mark.slow
@pytest.mark.parametrize(
    "task", [FlipFlop(), SineGeneration(), ContextIntegration()], ids=lambda t: t.name
)
def test_paper_settings_reach_the_fvu_targets(task):
    limit = 0.02 if task.name == "cdi" else 0.01
    m = train(task, "dense_orthogonal", 64, seed=0, progress=False)
    assert m.history["eval_fvu"][-1] <= limit
    # the final held-out score on a fresh, larger set
    assert evaluate(m, size=2048, seed=7)["fvu"] <= limit


@pytest.mark.slow
@pytest.mark.parametrize(
    ("construction", "seed"), [("dense_orthogonal", 0), ("cayley", 0)]
)
def test_copy_settings_solve_the_copy_task_at_72(construction, seed):
    m = train(CopyTask(), construction, 72, seed=seed, progress=False)
    assert m.config == tr.COPY_CONFIG
    assert evaluate(m, size=1024, seed=11)["accuracy"] >= 0.999
