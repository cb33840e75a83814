"""The typed core error (NonFiniteError) and the shared argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnschur
from rnnschur import _core, loss_and_grad, ordered_schur, rollout
from rnnschur._validation import check_int, check_real, is_integer, is_real
from rnnschur.tasks import CopyTask
from rnnschur.training import TrainConfig, TrainingDiverged, train
from rnnschur.training import step as tstep


@pytest.fixture
def p(rng):
    return {
        "W_xh": rng.standard_normal((6, 3)),
        "W_hh": rng.standard_normal((6, 6)) * 0.3,
        "W_hy": rng.standard_normal((2, 6)),
        "x": rng.standard_normal((5, 4, 3)),
    }


def test_non_finite_error_is_exported_value_error():
    assert rnnschur.NonFiniteError is _core.NonFiniteError
    assert issubclass(rnnschur.NonFiniteError, ValueError)
    assert rnnschur.NonFiniteError is not _core.SwapRejected


@pytest.mark.parametrize("name", ["W_xh", "W_hh", "W_hy", "x"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_raise_the_typed_error(p, name, bad):
    q = {k: v.copy() for k, v in p.items()}
    q[name].flat[3] = bad
    y = np.zeros((5, 4, 2))
    with pytest.raises(rnnschur.NonFiniteError, match=f"{name} must contain only"):
        rollout(q["W_xh"], q["W_hh"], q["W_hy"], q["x"])
    with pytest.raises(rnnschur.NonFiniteError, match=f"{name} must contain only"):
        loss_and_grad(q["W_xh"], q["W_hh"], q["W_hy"], q["x"], y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_overflow_raises_the_typed_error(p, dtype):
    big = np.finfo(dtype).max
    q = {k: v.astype(dtype) for k, v in p.items()}
    W_hy = np.full((2, 6), big, dtype=dtype)
    with pytest.raises(rnnschur.NonFiniteError, match="rollout overflowed"):
        rollout(q["W_xh"], q["W_hh"], W_hy, q["x"])
    with pytest.raises(rnnschur.NonFiniteError, match="loss_and_grad overflowed"):
        loss_and_grad(q["W_xh"], q["W_hh"], W_hy, q["x"], np.zeros((5, 4, 2), dtype))


def test_other_value_errors_are_not_the_typed_error(p):
    with pytest.raises(ValueError, match="x has shape") as info:
        rollout(p["W_xh"], p["W_hh"], p["W_hy"], p["x"][:, :, :2].copy())
    assert not isinstance(info.value, rnnschur.NonFiniteError)


def test_schur_non_finite_input_raises_the_typed_error():
    W = np.eye(4)
    W[1, 2] = np.nan
    with pytest.raises(rnnschur.NonFiniteError, match="finite"):
        ordered_schur(W)
    for fn in (_core.schur_real_eigen, _core.schur_real_own):
        with pytest.raises(rnnschur.NonFiniteError, match="W must be finite"):
            fn(W)


SMALL = TrainConfig(epochs=2, batches_per_epoch=3, batch_size=8, eval_size=16)


def test_training_turns_the_typed_error_into_divergence(monkeypatch):
    def raising(*_args):
        msg = "W_hh must contain only finite values (found NaN or inf)"
        raise rnnschur.NonFiniteError(msg)

    monkeypatch.setattr(tstep, "core_loss_and_grad", raising)
    with pytest.raises(TrainingDiverged, match="epoch 0, batch 0") as info:
        train(CopyTask(lags=4), "dense_orthogonal", 6, seed=0, config=SMALL,
              progress=False)  # fmt: skip
    assert isinstance(info.value.__cause__, rnnschur.NonFiniteError)


def test_training_does_not_read_error_text(monkeypatch):
    # A plain ValueError that merely mentions overflow is a bug, not divergence.
    def raising(*_args):
        msg = "loss_and_grad overflowed (but not a NonFiniteError)"
        raise ValueError(msg)

    monkeypatch.setattr(tstep, "core_loss_and_grad", raising)
    with pytest.raises(ValueError, match="not a NonFiniteError") as info:
        train(CopyTask(lags=4), "dense_orthogonal", 6, seed=0, config=SMALL,
              progress=False)  # fmt: skip
    assert not isinstance(info.value, TrainingDiverged)


# ----------------------------------------------------------------------- validation


@pytest.mark.parametrize("v", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_numpy_integers_are_integers(v):
    assert is_integer(v)
    assert is_real(v)
    assert check_int("n", v, 1) == 3
    assert type(check_int("n", v, 1)) is int


@pytest.mark.parametrize("v", [True, np.bool_(True), 3.0, "3", None, np.float64(3)])
def test_non_integers_are_rejected(v):
    assert not is_integer(v)
    with pytest.raises(TypeError, match="n must be an integer"):
        check_int("n", v, 1)


def test_check_int_minimum():
    with pytest.raises(ValueError, match="n must be >= 1; got 0"):
        check_int("n", np.int64(0), 1)


@pytest.mark.parametrize("v", [True, np.bool_(False), "1.0", None, 1j])
def test_check_real_rejects_non_reals(v):
    with pytest.raises(TypeError, match="x must be a real number"):
        check_real("x", v, low=0.0)


@pytest.mark.parametrize("v", [np.nan, np.inf, -1.0, 2.5])
def test_check_real_range(v):
    with pytest.raises(ValueError, match=r"x must lie in \(0.0, 2.0\]"):
        check_real("x", v, low=0.0, high=2.0, low_open=True)
    assert check_real("x", np.float32(1.5), low=0.0, high=2.0) == 1.5


@pytest.mark.parametrize("v", [np.inf, -np.inf, np.nan, -1.0])
def test_check_real_infinite_bounds_are_open_ends(v):
    """inf is rejected, so the message must not offer a closed "[0.0, inf]"."""
    with pytest.raises(ValueError, match=r"x must lie in \[0.0, inf\); got"):
        check_real("x", v, low=0.0)
    with pytest.raises(ValueError, match=r"x must lie in \(-inf, 0.0\]; got"):
        check_real("x", abs(v) if v != -1.0 else 1.0, low=-math.inf, high=0.0)


def test_numpy_integers_accepted_across_the_package(tmp_path):
    from rnnschur.paper.models import ensure_models

    cfg = TrainConfig(epochs=np.int64(1), batches_per_epoch=np.int64(2), batch_size=8,
                      eval_size=16)  # fmt: skip
    assert cfg.epochs == 1
    assert type(cfg.epochs) is int
    m = train("flipflop", "dense_orthogonal", np.int64(5), seed=np.int64(1),
              config=cfg, progress=False)  # fmt: skip
    assert (m.hidden, m.seed) == (5, 1)
    assert CopyTask(lags=np.int64(4)).lags == 4
    assert ensure_models([], tmp_path, jobs=np.int64(1)) == {}
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        ensure_models([], tmp_path, jobs=True)
